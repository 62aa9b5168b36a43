using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core.Harness;

/// <summary>Drives an <see cref="SmtpSession"/> over in-memory pipes: send raw bytes, read whole replies.</summary>
internal sealed class SmtpTestClient : IAsyncDisposable
{
    private readonly Pipe _toServer = new();
    private readonly Pipe _toClient = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _abort = new();

    private SmtpTestClient(IMessageHandler handler, SmtpServerOptions options, ListenerRole role, IPAddress remote)
    {
        var connection = new PipeConnection(_toServer, _toClient, new IPEndPoint(remote, 40000));
        Info = new SmtpSessionInfo(connection.RemoteEndPoint, connection.LocalEndPoint, role);
        var session = new SmtpSession(connection, Info, options, handler, NullLogger.Instance, _stopping.Token, _abort.Token);
        Session = Task.Run(async () =>
        {
            await session.RunAsync();
            await connection.DisposeAsync();
        });
    }

    public Task Session { get; }

    public SmtpSessionInfo Info { get; }

    public static SmtpServerOptions DefaultOptions => new() { Hostname = "mx.test" };

    public static async Task<SmtpTestClient> ConnectAsync(IMessageHandler handler, SmtpServerOptions? options = null,
        ListenerRole role = ListenerRole.Mx, IPAddress? remote = null)
    {
        var client = new SmtpTestClient(handler, options ?? DefaultOptions, role, remote ?? IPAddress.Parse("192.0.2.10"));
        string greeting = await client.ReadReplyAsync();
        Assert.StartsWith("220 mx.test ESMTP", greeting, StringComparison.Ordinal);
        return client;
    }

    public async Task SendAsync(string text) => await SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await _toServer.Writer.WriteAsync(bytes);
    }

    public async Task<string> CommandAsync(string line)
    {
        await SendAsync(line + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>Reads one reply, all its lines ("250-a", "250 b"), joined with \n.</summary>
    public async Task<string> ReadReplyAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var lines = new List<string>();
        while (true)
        {
            ReadResult result = await _toClient.Reader.ReadAsync(cts.Token);
            ReadOnlySequence<byte> buffer = result.Buffer;
            while (buffer.PositionOf((byte)'\n') is { } lf)
            {
                string line = Encoding.UTF8.GetString(buffer.Slice(0, lf)).TrimEnd('\r');
                buffer = buffer.Slice(buffer.GetPosition(1, lf));
                lines.Add(line);
                if (line.Length < 4 || line[3] != '-')
                {
                    _toClient.Reader.AdvanceTo(buffer.Start);
                    return string.Join("\n", lines);
                }
            }

            _toClient.Reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return lines.Count == 0 ? "" : string.Join("\n", lines);
            }
        }
    }

    /// <summary>True when the server closed its side (no more replies) within the timeout.</summary>
    public async Task<bool> IsClosedAsync(TimeSpan? timeout = null)
    {
        try
        {
            await Session.WaitAsync(timeout ?? TimeSpan.FromSeconds(10));
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    public async Task GreetAsync()
    {
        string reply = await CommandAsync("EHLO client.test");
        Assert.StartsWith("250", reply, StringComparison.Ordinal);
    }

    public void Stop() => _stopping.Cancel();

    public async ValueTask DisposeAsync()
    {
        await _toServer.Writer.CompleteAsync();
        await _abort.CancelAsync();
        try
        {
            await Session.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
        }

        _stopping.Dispose();
        _abort.Dispose();
    }
}
