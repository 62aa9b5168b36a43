using System.Net;
using BenchmarkDotNet.Attributes;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Benchmarks;

/// <summary>
/// One Maildir delivery: tmp file, CRLF → LF, fsync, rename into new/, directory fsync. Dominated by the
/// disk; the allocation column is what matters here (a few small objects per message, none per line).
/// </summary>
[MemoryDiagnoser]
public class MaildirWriting
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "slimmail-bench-" + Guid.NewGuid().ToString("N"));
    private MaildirStore _store = null!;
    private MailTransactionContext _context = null!;
    private DeliveryRecipient[] _recipients = [];
    private byte[] _message = [];

    [GlobalSetup]
    public void Setup()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "bench"));
        _store = new MaildirStore(_ => mailbox);
        var session = new SmtpSessionInfo(new IPEndPoint(IPAddress.Loopback, 1), new IPEndPoint(IPAddress.Loopback, 25), ListenerRole.Local);
        _context = new MailTransactionContext("BENCH", session, null, false, false, 0);
        if (!AddressParser.TryParseMailbox("bench@example.test"u8, out MailAddress? address))
        {
            throw new InvalidOperationException("the benchmark address does not parse");
        }

        _recipients = [new DeliveryRecipient("bench", address!)];
        _message = new byte[1024];
        for (int i = 0; i < _message.Length; i++)
        {
            _message[i] = i % 72 == 70 ? (byte)'\r' : i % 72 == 71 ? (byte)'\n' : (byte)'x';
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_root, recursive: true);

    [Benchmark]
    public async Task<DeliveryOutcome> DeliverOneKilobyte()
    {
        await using IDeliveryWriter writer = await _store.BeginAsync(_context, _recipients, default);
        await writer.WriteAsync(_message, default);
        return await writer.CommitAsync(default);
    }
}
