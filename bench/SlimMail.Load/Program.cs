using System.Diagnostics;
using System.Globalization;
using System.Net;
using SlimMail.Load;

// slimmail-load smtp HOST:PORT -s SESSIONS -m MESSAGES -l SIZE [-d] [-P] [-f FROM] [-t TO]
// slimmail-load pop3 HOST:PORT -s SESSIONS -u USER[{0}] -w PASSWORD [-L: log in and quit]
// Prints "RATE COUNT BYTES SECONDS" (messages per second first) and exits non-zero on any failure.
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: slimmail-load smtp|pop3 HOST:PORT [options]");
    return 64;
}

var options = LoadOptions.Parse(args[2..]);
IPEndPoint endpoint = IPEndPoint.Parse(args[1]);
var stopwatch = Stopwatch.StartNew();
LoadResult result = args[0] switch
{
    "smtp" => await SmtpLoad.RunAsync(endpoint, options),
    "pop3" => await Pop3Load.RunAsync(endpoint, options),
    _ => throw new ArgumentException($"unknown mode {args[0]}"),
};
double seconds = result.Seconds > 0 ? result.Seconds : stopwatch.Elapsed.TotalSeconds;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{result.Messages / seconds:F0} {result.Messages} {result.Bytes} {seconds:F3}"));
return 0;
