using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SlimMail.Tests.Core.Harness;

/// <summary>A line-by-line POP3 client over a TCP socket.</summary>
internal sealed class Pop3TestClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly StreamReader _reader;
    private readonly Stream _stream;

    private Pop3TestClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _reader = new StreamReader(_stream, Encoding.ASCII);
    }

    public static async Task<Pop3TestClient> ConnectAsync(IPEndPoint endPoint)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(endPoint);
        var client = new Pop3TestClient(tcp);
        Assert.StartsWith("+OK", await client.ReadLineAsync());
        return client;
    }

    public async Task LoginAsync()
    {
        Assert.StartsWith("+OK", await CommandAsync("USER alice"));
        Assert.StartsWith("+OK Logged in", await CommandAsync("PASS secret"));
    }

    public async Task<string?> CommandAsync(string command)
    {
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n"));
        return await ReadLineAsync();
    }

    public async Task<string?> ReadLineAsync() => await _reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10));

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
