// Micro-benchmarks of the hot paths, with allocations: dotnet run -c Release --project bench/SlimMail.Benchmarks -- --filter '*'
// (bench/micro.sh runs them all and prints the table recorded in docs/benchmarks.md).
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(SlimMail.Benchmarks.CommandParsing).Assembly).Run(args);
