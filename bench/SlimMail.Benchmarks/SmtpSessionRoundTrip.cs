using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;

namespace SlimMail.Benchmarks;

/// <summary>
/// A whole <see cref="SmtpSession"/> driven the way a client drives it: a command, then wait for its reply, so that
/// the session's every read finds the connection empty and suspends, as it does on a socket. The micro-benchmarks of
/// the parsers feed lines that are already there and never see what a suspended read costs (its state machine).
/// The allocations counted are the whole process's: the session's, the in-memory pipes' and their thread-pool
/// hand-offs (the client's waits are pooled).
/// </summary>
[MemoryDiagnoser]
public class SmtpSessionRoundTrip
{
    private const int Rounds = 200;
    private static readonly byte[] Noop = "NOOP\r\n"u8.ToArray();
    private static readonly byte[] Envelope = "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@bench.test>\r\nDATA\r\n"u8.ToArray();
    private readonly Pipe _toServer = new(new PipeOptions(useSynchronizationContext: false));
    private readonly Pipe _toClient = new(new PipeOptions(useSynchronizationContext: false));
    private byte[] _message = [];
    private Task _session = Task.CompletedTask;

    [GlobalSetup]
    public void Setup()
    {
        var body = new System.Text.StringBuilder("From: <a@client.test>\r\nTo: <b@bench.test>\r\nSubject: load\r\n\r\n");
        while (body.Length < 1024)
        {
            body.Append('x', 78).Append("\r\n");
        }

        _message = System.Text.Encoding.ASCII.GetBytes(body.Append(".\r\n").ToString());
        var connection = new PipeConnection(_toServer, _toClient, new IPEndPoint(IPAddress.Parse("192.0.2.10"), 40000));
        var info = new SmtpSessionInfo(connection.RemoteEndPoint, connection.LocalEndPoint, ListenerRole.Mx);
        var session = new SmtpSession(connection, info, new SmtpServerOptions { Hostname = "mx.test" }, new DiscardingHandler(),
            NullLogger.Instance, CancellationToken.None, CancellationToken.None);
        _session = Task.Run(session.RunAsync);
        ExpectAsync(1).AsTask().GetAwaiter().GetResult();
        SendAsync("EHLO client.test\r\n"u8.ToArray()).AsTask().GetAwaiter().GetResult();
        ExpectAsync(1).AsTask().GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        // The client's end of input: the session ends as on a closed connection.
        _toServer.Writer.Complete();
        _session.Wait(TimeSpan.FromSeconds(5));
    }

    /// <summary>Per operation: one NOOP and its reply.</summary>
    [Benchmark(OperationsPerInvoke = Rounds)]
    public async Task Command()
    {
        for (int i = 0; i < Rounds; i++)
        {
            await SendAsync(Noop);
            await ExpectAsync(1);
        }
    }

    /// <summary>Per operation: one 1 KB message as a pipelining client sends it (MAIL, RCPT, DATA; the body).</summary>
    [Benchmark(OperationsPerInvoke = Rounds)]
    public async Task Message()
    {
        for (int i = 0; i < Rounds; i++)
        {
            await SendAsync(Envelope);
            await ExpectAsync(3);
            await SendAsync(_message);
            await ExpectAsync(1);
        }
    }

    private ValueTask<FlushResult> SendAsync(byte[] bytes) => _toServer.Writer.WriteAsync(bytes);

    // Reads replies until `count` final lines ("250 ", not "250-") have come. Pooled, so that the client's own
    // waits add nothing to the count.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ExpectAsync(int count)
    {
        while (count > 0)
        {
            ReadResult read = await _toClient.Reader.ReadAsync();
            ReadOnlySequence<byte> buffer = read.Buffer;
            while (count > 0 && buffer.PositionOf((byte)'\n') is SequencePosition end)
            {
                ReadOnlySequence<byte> line = buffer.Slice(0, end);
                if (line.Length > 3 && line.Slice(3, 1).FirstSpan[0] == (byte)' ')
                {
                    count--;
                }

                buffer = buffer.Slice(buffer.GetPosition(1, end));
            }

            if (read.IsCompleted && count > 0)
            {
                throw new InvalidOperationException("the session ended");
            }

            _toClient.Reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}
