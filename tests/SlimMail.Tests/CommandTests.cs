using SlimMail.Auth;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

public sealed class CommandTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-cmd-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private async Task<ProcessResult> SlimMailAsync(params string[] arguments) =>
        await ProcessRunner.RunAsync("dotnet", new[] { SlimMailServer.SlimMailDll }.Concat(arguments), workingDirectory: _directory);

    private async Task<string> WriteConfigAsync(string json)
    {
        string path = Path.Combine(_directory, "slimmail.json");
        await File.WriteAllTextAsync(path, json);
        return path;
    }

    [Fact]
    public async Task Check_config_accepts_a_good_configuration()
    {
        string path = await WriteConfigAsync(ServeEndToEndTests.Config.Replace("$DATA", _directory, StringComparison.Ordinal));
        ProcessResult result = await SlimMailAsync("check-config", "--config", path);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("configuration ok", result.Stdout);
    }

    [Fact]
    public async Task Check_config_names_every_problem_by_its_key_and_exits_1()
    {
        string path = await WriteConfigAsync("""
            {
              "Smtp": {
                "Listeners": [
                  { "Endpoint": "0.0.0.0:2525", "Role": "Local" },
                  { "Endpoint": "nonsense", "Role": "Mx" },
                  { "Endpoint": "127.0.0.1:25", "Role": "Relay" }
                ],
                "MaxMessageSize": "big",
                "CommandTimeout": "soon",
                "MaxMesageSize": 5
              },
              "Domains": { "example.test": { "Mailboxes": { "alice": "nobody" } } },
              "Users": { "alice": { "PasswordHash": "plain", "FileMode": "0999", "Delivery": "missing" } },
              "Relay": { "Mode": "Sometimes" }
            }
            """);
        ProcessResult result = await SlimMailAsync("check-config", "--config", path);
        Assert.Equal(1, result.ExitCode);
        foreach (string key in new[]
                 {
                     "Smtp:Listeners:0:Endpoint", "Smtp:Listeners:1:Endpoint", "Smtp:Listeners:2:Role", "Smtp:MaxMessageSize",
                     "Smtp:CommandTimeout", "Domains:example.test:Mailboxes:alice", "Users:alice:PasswordHash",
                     "Users:alice:FileMode", "Users:alice:Delivery", "Relay:Mode",
                 })
        {
            Assert.Contains("error: " + key + ":", result.Stdout);
        }

        Assert.Contains("warning: Smtp:MaxMesageSize: unknown key", result.Stdout);
    }

    [Fact]
    public async Task Check_config_names_each_broken_delivery_key()
    {
        string path = await WriteConfigAsync("""
            {
              "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:2525", "Role": "Local" } ] },
              "Deliveries": {
                "none": { "Type": "Pipe" },
                "quote": { "Type": "Pipe", "Command": "/bin/prog 'unterminated" },
                "db": { "Type": "PostgreSql" },
                "baddb": { "Type": "PostgreSql", "ConnectionString": "Nonsense Key=1" },
                "odd": { "Type": "Carrier-Pigeon", "Colour": "grey" },
                "slow": { "Type": "Pipe", "Command": "/bin/cat", "Timeout": "later" }
              }
            }
            """);
        ProcessResult result = await SlimMailAsync("check-config", "--config", path);
        Assert.Equal(1, result.ExitCode);
        foreach (string key in new[]
                 {
                     "Deliveries:none:Command", "Deliveries:quote:Command", "Deliveries:db:ConnectionString",
                     "Deliveries:baddb:ConnectionString", "Deliveries:odd:Type", "Deliveries:slow:Timeout",
                 })
        {
            Assert.Contains("error: " + key + ":", result.Stdout);
        }

        Assert.Contains("warning: Deliveries:odd:Colour: unknown key", result.Stdout);
    }

    [Fact]
    public async Task Check_config_names_each_broken_relay_key()
    {
        string path = await WriteConfigAsync("""
            {
              "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:2525", "Role": "Local" } ] },
              "Relay": { "Mode": "Smarthost", "Password": "p", "RetryDelays": [ "00:01:00", "soon" ], "MaxQueueTime": "forever",
                         "DnsServers": [ "192.0.2.53", "dns.example" ], "Retries": 3 }
            }
            """);
        ProcessResult result = await SlimMailAsync("check-config", "--config", path);
        Assert.Equal(1, result.ExitCode);
        foreach (string key in new[] { "Relay:Smarthost", "Relay:Username", "Relay:RetryDelays:1", "Relay:MaxQueueTime", "Relay:DnsServers:1" })
        {
            Assert.Contains("error: " + key + ":", result.Stdout);
        }

        Assert.Contains("warning: Relay:Retries: unknown key", result.Stdout);
        string good = await WriteConfigAsync("""
            { "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:2525", "Role": "Local" } ] },
              "Relay": { "Mode": "Mx", "DnsServers": [ "192.0.2.53", "[2001:db8::53]:5353" ] } }
            """);
        Assert.Equal(0, (await SlimMailAsync("check-config", "--config", good)).ExitCode);
    }

    [Fact]
    public async Task Check_config_requires_an_smtp_listener_in_a_configuration_file()
    {
        string path = await WriteConfigAsync("{ \"Hostname\": \"mx.test\" }");
        ProcessResult result = await SlimMailAsync("check-config", "--config", path);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("error: Smtp:Listeners: no SMTP listener is configured", result.Stdout);
    }

    [Fact]
    public async Task Check_config_reports_unreadable_json()
    {
        string path = await WriteConfigAsync("{ \"Smtp\": ");
        ProcessResult result = await SlimMailAsync("check-config", "--config", path);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("error: " + path, result.Stdout);
    }

    [Fact]
    public async Task Serve_refuses_a_bad_configuration_with_exit_1()
    {
        string path = await WriteConfigAsync("{ \"Smtp\": { \"Listeners\": [ { \"Endpoint\": \"0.0.0.0:2525\", \"Role\": \"Local\" } ] } }");
        ProcessResult result = await SlimMailAsync("serve", "--config", path);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("Smtp:Listeners:0:Endpoint", result.Stderr);
    }

    [Fact]
    public async Task Serve_exits_2_when_it_cannot_listen()
    {
        using var blocker = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        blocker.Start();
        int port = ((System.Net.IPEndPoint)blocker.LocalEndpoint).Port;
        string path = await WriteConfigAsync($$"""{ "DataDirectory": "{{_directory}}", "Smtp": { "Listeners": [ { "Endpoint": "127.0.0.1:{{port}}", "Role": "Mx" } ] } }""");
        ProcessResult result = await SlimMailAsync("serve", "--config", path);
        Assert.Equal(2, result.ExitCode);
    }

    [Fact]
    public async Task Hash_password_prints_a_pbkdf2_hash_that_verifies()
    {
        ProcessResult result = await ProcessRunner.RunAsync("dotnet", [SlimMailServer.SlimMailDll, "hash-password"], stdin: "s3cret pass\n");
        Assert.Equal(0, result.ExitCode);
        string hash = result.Stdout.Trim();
        Assert.StartsWith("$pbkdf2-sha256$i=600000$", hash);
        Assert.True(PasswordHasher.Verify("s3cret pass", hash));
        Assert.DoesNotContain("s3cret", result.Output);
    }

    [Fact]
    public async Task Hash_password_without_input_is_a_user_error()
    {
        ProcessResult result = await ProcessRunner.RunAsync("dotnet", [SlimMailServer.SlimMailDll, "hash-password"], stdin: "");
        Assert.Equal(1, result.ExitCode);
    }

    [Fact]
    public async Task Unknown_commands_are_a_user_error()
    {
        ProcessResult result = await SlimMailAsync("frobnicate");
        Assert.Equal(1, result.ExitCode);
    }
}
