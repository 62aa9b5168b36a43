using System.Net.Sockets;
using System.Text;
using MyApp;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core;

public class EmbeddingSampleTests
{
    [Fact]
    public async Task The_readme_sample_receives_a_message_over_a_real_socket()
    {
        var received = new TaskCompletionSource<(string?, IReadOnlyList<string>, byte[])>();
        SmtpServer server = await EmbeddedServer.StartAsync((from, to, data) =>
        {
            received.TrySetResult((from, to, data));
            return Task.CompletedTask;
        }, port: 0);
        await using (server)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(server.EndPoints[0]);
            using var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII);
            await reader.ReadLineAsync();
            await stream.WriteAsync("HELO me\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"u8.ToArray());
            for (int i = 0; i < 4; i++)
            {
                Assert.Matches("^(250|354)", await reader.ReadLineAsync());
            }

            await stream.WriteAsync("Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n"u8.ToArray());
            Assert.StartsWith("250", await reader.ReadLineAsync());
            (string? from, IReadOnlyList<string> to, byte[] data) = await received.Task.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal("a@b.test", from);
            Assert.Equal(["c@d.test"], to);
            Assert.EndsWith("Subject: hi\r\n\r\nhello\r\n", Encoding.ASCII.GetString(data));
            await server.StopAsync(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public void The_readme_quotes_the_sample_verbatim()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "README.md")))
        {
            root = Path.GetDirectoryName(root)!;
        }

        string sample = File.ReadAllText(Path.Combine(root, "tests", "SlimMail.Core.Tests", "EmbeddingSample.cs"));
        int start = sample.IndexOf("// <sample>\n", StringComparison.Ordinal) + "// <sample>\n".Length;
        int end = sample.IndexOf("// </sample>", StringComparison.Ordinal);
        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        Assert.Contains(sample[start..end], readme);
    }

    [Fact]
    public async Task A_server_stopped_and_then_disposed_twice_by_a_container_stays_quiet()
    {
        SmtpServer server = await EmbeddedServer.StartAsync((_, _, _) => Task.CompletedTask, port: 0);
        await server.StopAsync(TimeSpan.FromSeconds(1));
        await server.DisposeAsync();
        await server.DisposeAsync();
        using var client = new TcpClient();
        await Assert.ThrowsAnyAsync<SocketException>(() => client.ConnectAsync(server.EndPoints[0]));
    }
}
