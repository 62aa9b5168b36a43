using System.Globalization;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>
/// The packages as their users get them: <c>dotnet pack</c>, then a new project that references SlimMail.Core
/// and SlimMail.Hosting from the packed files, and <c>dotnet tool install</c> of the <c>slimmail</c> tool.
/// Each run packs a version of its own, so no package cache can hand back an older build.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class PackagingTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-pack-").FullName;
    private readonly string _version = "0.1.0-test." + DateTime.UtcNow.Ticks.ToString(CultureInfo.InvariantCulture);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private async Task PackAsync(string project)
    {
        ProcessResult pack = await ProcessRunner.RunAsync("dotnet",
            ["pack", Path.Combine(TestPaths.Repository, "src", project), "-c", "Release", "-o", Path.Combine(_directory, "feed"), "-p:Version=" + _version, "-nologo"],
            timeout: TimeSpan.FromMinutes(5));
        Assert.True(pack.ExitCode == 0, pack.Output);
    }

    [Fact]
    public async Task A_new_project_hosts_an_smtp_server_from_the_packed_library()
    {
        await PackAsync("SlimMail.Core");
        await PackAsync("SlimMail.Hosting");
        string app = Path.Combine(_directory, "app");
        Directory.CreateDirectory(app);
        await File.WriteAllTextAsync(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <RestoreAdditionalProjectSources>{Path.Combine(_directory, "feed")}</RestoreAdditionalProjectSources>
              </PropertyGroup>
              <ItemGroup>
                <FrameworkReference Include="Microsoft.AspNetCore.App" />
                <PackageReference Include="SlimMail.Core" Version="{_version}" />
                <PackageReference Include="SlimMail.Hosting" Version="{_version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
            using System.Net;
            using Microsoft.Extensions.DependencyInjection;
            using Microsoft.Extensions.Hosting;
            using SlimMail.Delivery;
            using SlimMail.Smtp;

            var builder = Host.CreateApplicationBuilder();
            builder.Services.AddSlimMailSmtp<CountingHandler>(_ => new SmtpServerOptions
            {
                Listeners = [new SmtpListenerOptions(new IPEndPoint(IPAddress.Loopback, 0), ListenerRole.Local)],
            });
            using var host = builder.Build();
            await host.StartAsync();
            Console.WriteLine("port " + host.Services.GetRequiredService<SlimMail.Hosting.SlimMailSmtpService>().EndPoints[0].Port);
            await host.StopAsync();

            sealed class CountingHandler : IMessageHandler
            {
                public long MaxMessageSize => 0;
                public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken) =>
                    ValueTask.FromResult(TransactionStart.Refuse(new SmtpReply(554, "5.7.1", "no")));
            }
            """);
        ProcessResult run = await ProcessRunner.RunAsync("dotnet", ["run", "--project", app], timeout: TimeSpan.FromMinutes(5));
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Matches(@"port \d+", run.Stdout);
    }

    [Fact]
    public async Task The_slimmail_tool_installs_from_its_package_and_runs()
    {
        await PackAsync("SlimMail");
        string tools = Path.Combine(_directory, "tools");
        ProcessResult install = await ProcessRunner.RunAsync("dotnet",
            ["tool", "install", "slimmail", "--tool-path", tools, "--version", _version, "--add-source", Path.Combine(_directory, "feed")],
            timeout: TimeSpan.FromMinutes(5));
        Assert.True(install.ExitCode == 0, install.Output);

        string config = Path.Combine(_directory, "bad.json");
        await File.WriteAllTextAsync(config, """{ "Smtp": { "MaxRecipients": 0 } }""");
        ProcessResult check = await ProcessRunner.RunAsync(Path.Combine(tools, "slimmail"), ["check-config", "--config", config]);
        Assert.Equal(1, check.ExitCode);
        Assert.Contains("Smtp:MaxRecipients", check.Output, StringComparison.Ordinal);
        ProcessResult hash = await ProcessRunner.RunAsync(Path.Combine(tools, "slimmail"), ["hash-password"], stdin: "secret\n");
        Assert.Equal(0, hash.ExitCode);
        Assert.StartsWith("$pbkdf2-sha256$", hash.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_single_file_trimmed_executable_publishes_and_serves_mail()
    {
        string dist = Path.Combine(_directory, "dist");
        ProcessResult publish = await ProcessRunner.RunAsync("bash", [Path.Combine(TestPaths.Repository, "deploy", "publish.sh"), dist], timeout: TimeSpan.FromMinutes(8));
        Assert.True(publish.ExitCode == 0, publish.Output);
        Assert.Equal(["slimmail"], Directory.GetFiles(dist).Select(Path.GetFileName));

        var info = new System.Diagnostics.ProcessStartInfo(Path.Combine(dist, "slimmail"))
        {
            WorkingDirectory = _directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in new[] { "serve", "--Smtp:Listeners:0:Endpoint=127.0.0.1:0", "--Pop3:Listeners:0:Endpoint=127.0.0.1:0" })
        {
            info.ArgumentList.Add(argument);
        }

        using var server = System.Diagnostics.Process.Start(info)!;
        try
        {
            int port = 0;
            while (port == 0 && await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
            {
                System.Text.RegularExpressions.Match match = System.Text.RegularExpressions.Regex.Match(line, @"SlimMail\.Smtp.* listening on 127\.0\.0\.1:(\d+)");
                port = match.Success ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
            }

            ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
                ["--server", "127.0.0.1", "--port", port.ToString(CultureInfo.InvariantCulture), "--to", "root@localhost", "--body", "from the trimmed build"]);
            Assert.True(swaks.ExitCode == 0, swaks.Output);
            string mail = Path.Combine(_directory, "slimmail-data", "mail", "local", "new");
            Assert.Contains("from the trimmed build", await File.ReadAllTextAsync(Assert.Single(Directory.GetFiles(mail))), StringComparison.Ordinal);
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task The_dockerfile_is_multi_stage_unprivileged_with_a_data_volume_and_its_config_is_valid()
    {
        // No container engine runs here, so the Dockerfile is linted; its default configuration is checked for real.
        string[] lines = (await File.ReadAllLinesAsync(Path.Combine(TestPaths.Repository, "Dockerfile")))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
        string[] from = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, from.Length);
        Assert.All(from, f => Assert.Matches(@"^FROM mcr\.microsoft\.com/dotnet/[a-z-]+:10\.0 AS \w+$", f));
        int runtime = Array.IndexOf(lines, from[1]);
        string[] final = lines[runtime..];
        Assert.Contains("USER slimmail", final);
        Assert.Contains(final, l => l.StartsWith("COPY --from=build ", StringComparison.Ordinal));
        Assert.Contains("VOLUME [\"/var/lib/slimmail\"]", final);
        Assert.Contains(final, l => l.StartsWith("EXPOSE 25 ", StringComparison.Ordinal));
        Assert.Contains(final, l => l.StartsWith("ENTRYPOINT [\"", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith("ADD ", StringComparison.Ordinal) || l.Contains(":latest", StringComparison.Ordinal));
        Assert.Single(lines, l => l.StartsWith("USER ", StringComparison.Ordinal));

        ProcessResult check = await ProcessRunner.RunAsync("dotnet",
            [Path.Combine(AppContext.BaseDirectory, "slimmail.dll"), "check-config", "--config", Path.Combine(TestPaths.Repository, "deploy", "container.json")]);
        Assert.True(check.ExitCode == 0, check.Output);
    }
}
