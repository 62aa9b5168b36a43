using System.Globalization;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

[Collection(ServerCollection.Name)]
public sealed class ZeroConfigTests
{
    [Fact]
    public async Task Without_a_configuration_file_mail_to_anyone_lands_in_user_locals_maildir()
    {
        // The real default endpoint 127.0.0.1:2525, in a directory of its own.
        await using SlimMailServer server = await SlimMailServer.StartAsync(configJson: null);
        Assert.Equal(2525, server.Port);
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1:2525", "--from", "cron@localhost", "--to", "root@localhost", "--header", "Subject: disk almost full", "--body", "df says 97%"]);
        Assert.True(swaks.ExitCode == 0, swaks.Output);

        string maildir = Path.Combine(server.Directory, "slimmail-data", "mail", "local", "new");
        string file = Assert.Single(Directory.GetFiles(maildir));
        string text = await File.ReadAllTextAsync(file);
        Assert.Contains("Subject: disk almost full\n", text);
        Assert.Contains("df says 97%", text);
    }

    [Fact]
    public async Task The_local_password_is_generated_mode_0600_and_only_its_file_is_logged()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(configJson: null, ["--Smtp:Listeners:0:Endpoint=127.0.0.1:0"]);
        string passwordFile = Path.Combine(server.Directory, "slimmail-data", "local-password");
        Assert.True(File.Exists(passwordFile));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
        string password = (await File.ReadAllTextAsync(passwordFile)).Trim();
        Assert.True(password.Length >= 16);
        Assert.Contains(server.Log, l => l.Contains(passwordFile, StringComparison.Ordinal));
        Assert.DoesNotContain(server.Log, l => l.Contains(password, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Zero_config_defaults_can_be_overridden_on_the_command_line()
    {
        await using SlimMailServer server = await SlimMailServer.StartAsync(configJson: null,
            ["--Smtp:Listeners:0:Endpoint=127.0.0.1:0", "--Smtp:MaxMessageSize=1000000"]);
        ProcessResult swaks = await ProcessRunner.RunAsync("swaks",
            ["--server", "127.0.0.1", "--port", server.Port.ToString(CultureInfo.InvariantCulture), "--to", "x@y.test", "--quit-after", "EHLO"]);
        Assert.Contains("250-SIZE 1000000", swaks.Stdout);
    }
}
