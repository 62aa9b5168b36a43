using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using SlimMail.Samples;
using SlimMail.Smtp;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>The library samples in <c>samples/</c>, run as a user of the library would run them.</summary>
[Collection(ServerCollection.Name)]
public sealed partial class SamplesTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-samples-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string SamplesDll => Path.Combine(AppContext.BaseDirectory, "slimmail-samples.dll");

    private const string Send = """
        import smtplib, sys
        s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
        s.sendmail('app@example.test', ['secrets@example.test'], sys.stdin.buffer.read())
        s.quit()
        """;

    [Fact]
    public async Task The_encrypting_handler_under_the_generic_host_writes_no_plaintext_and_decrypts_back_exactly()
    {
        string key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        string output = Path.Combine(_directory, "out");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in new[] { SamplesDll, "serve", "--Encryption:Key=" + key, "--Encryption:OutputDirectory=" + output, "--Smtp:Endpoint=127.0.0.1:0" })
        {
            info.ArgumentList.Add(argument);
        }

        using Process host = Process.Start(info)!;
        try
        {
            // The host logs to stdout too; the sample prints its endpoint once started.
            Match listening = Match.Empty;
            while (!listening.Success && await host.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
            {
                listening = ListeningLine().Match(line);
            }

            Assert.True(listening.Success, "the sample never said where it listens");
            string port = listening.Groups[1].Value;

            // Several 64 KB chunks, and a marker that must appear nowhere on disk.
            string marker = "TOP-SECRET-" + Guid.NewGuid().ToString("N");
            string body = "Subject: payroll\r\n\r\n" + string.Concat(Enumerable.Repeat(marker + " " + new string('z', 900) + "\r\n", 300));
            ProcessResult sent = await ProcessRunner.RunAsync("python3", ["-c", Send, port], stdin: body);
            Assert.True(sent.ExitCode == 0, sent.Output);

            string file = Assert.Single(Directory.GetFiles(output));
            Assert.Empty(Directory.GetFiles(Path.Combine(output, "tmp")));
            byte[] markerBytes = Encoding.ASCII.GetBytes(marker);
            foreach (string any in Directory.GetFiles(output, "*", SearchOption.AllDirectories))
            {
                Assert.Equal(-1, File.ReadAllBytes(any).AsSpan().IndexOf(markerBytes));
            }

            ProcessResult decrypted = await ProcessRunner.RunAsync("dotnet", [SamplesDll, "decrypt", file, "--Encryption:Key=" + key]);
            Assert.True(decrypted.ExitCode == 0, decrypted.Stderr);
            Assert.StartsWith("Received: from ", decrypted.Stdout, StringComparison.Ordinal);
            Assert.EndsWith("\r\n" + body, decrypted.Stdout, StringComparison.Ordinal);

            // One flipped bit anywhere and the file no longer decrypts.
            byte[] altered = File.ReadAllBytes(file);
            altered[altered.Length / 2] ^= 1;
            await File.WriteAllBytesAsync(file, altered);
            ProcessResult tampered = await ProcessRunner.RunAsync("dotnet", [SamplesDll, "decrypt", file, "--Encryption:Key=" + key]);
            Assert.NotEqual(0, tampered.ExitCode);
        }
        finally
        {
            host.Kill(entireProcessTree: true);
            await host.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task The_in_memory_handler_keeps_what_a_real_client_sent_and_refuses_other_domains()
    {
        var handler = new InMemoryMessageHandler();
        var options = new SmtpServerOptions
        {
            Hostname = "test.example.test",
            Listeners = [new SmtpListenerOptions(new IPEndPoint(IPAddress.Loopback, 0), ListenerRole.Local)],
        };
        await using var server = new SmtpServer(options, handler);
        await server.StartAsync();
        const string script = """
            import smtplib, sys
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
            s.ehlo('client.test')
            s.mail('app@example.test')
            print(s.rcpt('user@example.test')[0], s.rcpt('user@elsewhere.test')[0])
            print(s.data(b'Subject: hi\r\n\r\nhello\r\n')[0])
            s.quit()
            """;
        ProcessResult result = await ProcessRunner.PythonAsync(script, server.EndPoints[0].Port.ToString(CultureInfo.InvariantCulture));
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Equal("250 550\n250\n", result.Stdout.Replace("\r", "", StringComparison.Ordinal));
        ReceivedMessage message = Assert.Single(handler.Messages);
        Assert.Equal("app@example.test", message.Sender);
        Assert.Equal(["user@example.test"], message.Recipients);
        Assert.EndsWith("\r\nSubject: hi\r\n\r\nhello\r\n", Encoding.ASCII.GetString(message.Data), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
