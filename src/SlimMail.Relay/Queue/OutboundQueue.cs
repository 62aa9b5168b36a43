using System.Text.Json;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Relay.Queue;

/// <summary>
/// The durable outbound queue under <c>&lt;DataDirectory&gt;/queue/</c>: each message is a body file
/// (<c>ID.msg</c>, CRLF, the <c>Received:</c> header first) and an envelope (<c>ID.env</c>). A message is
/// queued when its envelope exists: the body is written (unnamed in the queue directory where Linux allows it,
/// else in <c>tmp/</c>), fsync'd and named first, then the envelope the same way, then the directory is fsync'd
/// (one fsync for every message named meanwhile), all before the client hears <c>250</c>. A body without an
/// envelope was never acknowledged and is removed at start.
/// As an <see cref="IDeliveryAgent"/> it is where <see cref="LocalDeliveryHandler"/> sends remote recipients.
/// </summary>
public sealed partial class OutboundQueue : IDeliveryAgent
{
    // Queued mail is nobody's but the server's.
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _tmp;
    private readonly ILogger _logger;

    /// <summary>Opens (and creates) the queue in <paramref name="directory"/>.</summary>
    public OutboundQueue(string directory, ILogger logger)
    {
        Directory = Path.GetFullPath(directory);
        _tmp = Path.Combine(Directory, "tmp");
        System.IO.Directory.CreateDirectory(_tmp);
        System.IO.Directory.CreateDirectory(ControlDirectory);
        _logger = logger;
    }

    /// <summary>The queue directory.</summary>
    public string Directory { get; }

    /// <summary>Called after a message is durably queued (the scheduler wakes up on it).</summary>
    public event Action<QueueEnvelope>? Queued;

    /// <inheritdoc />
    public string DeliveryType => "relay";

    /// <inheritdoc />
    public ValueTask<IDeliveryWriter> BeginAsync(MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(recipients);
        var addresses = new List<string>(recipients.Count);
        bool utf8 = context.SmtpUtf8 || (context.Sender?.IsInternational ?? false);
        foreach (DeliveryRecipient recipient in recipients)
        {
            addresses.Add(recipient.Address.ToString());
            utf8 |= recipient.Address.IsInternational;
        }

        return ValueTask.FromResult<IDeliveryWriter>(new Writer(this, context.QueueId, context.Sender?.ToString() ?? "", addresses, utf8));
    }

    /// <summary>Queues a message the server itself makes (a bounce): the same durable path as received mail.</summary>
    public async Task<string> EnqueueAsync(string sender, IReadOnlyList<string> recipients, ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        await using var writer = new Writer(this, QueueIdGenerator.Next(), sender, [.. recipients], smtpUtf8: false);
        await writer.WriteAsync(message, cancellationToken).ConfigureAwait(false);
        if (await writer.CommitAsync(cancellationToken).ConfigureAwait(false) != DeliveryOutcome.Delivered)
        {
            throw new IOException("the message could not be queued");
        }

        return writer.Id;
    }

    /// <summary>
    /// Every queued envelope, oldest first. Removes what a crash left half-written: temporary files, and
    /// bodies whose envelope was never written (those messages were never acknowledged).
    /// </summary>
    public List<QueueEnvelope> LoadAll(bool cleanUp = true)
    {
        var envelopes = new List<QueueEnvelope>();
        if (cleanUp)
        {
            foreach (string file in System.IO.Directory.GetFiles(_tmp))
            {
                File.Delete(file);
            }
        }

        foreach (string file in System.IO.Directory.GetFiles(Directory, "*.env"))
        {
            if (TryRead(file) is { } envelope)
            {
                envelopes.Add(envelope);
            }
        }

        if (cleanUp)
        {
            foreach (string body in System.IO.Directory.GetFiles(Directory, "*.msg"))
            {
                if (!File.Exists(Path.ChangeExtension(body, ".env")))
                {
                    File.Delete(body);
                }
            }
        }

        envelopes.Sort((a, b) => a.Arrival.CompareTo(b.Arrival));
        return envelopes;
    }

    /// <summary>Reads one envelope, or null when it is gone (delivered, deleted) or unreadable.</summary>
    public QueueEnvelope? Find(string id) => IsValidId(id) ? TryRead(EnvelopePath(id)) : null;

    /// <summary>The message body to send.</summary>
    public byte[] ReadBody(string id) => File.ReadAllBytes(BodyPath(id));

    /// <summary>
    /// Writes the envelope's new state durably. Returns false when the message was deleted meanwhile
    /// (<c>slimmail queue delete</c>): then nothing is written back.
    /// </summary>
    public bool Save(QueueEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (!File.Exists(EnvelopePath(envelope.Id)))
        {
            return false;
        }

        WriteEnvelope(envelope, replace: true);
        DirectorySync.Shared.Sync(Directory);
        return true;
    }

    /// <summary>Removes a message (finished, or deleted by the administrator); false if there was none.</summary>
    public bool Remove(string id)
    {
        if (!IsValidId(id) || !File.Exists(EnvelopePath(id)))
        {
            return false;
        }

        // The envelope goes first: without it the body is an orphan that the next start removes.
        File.Delete(EnvelopePath(id));
        File.Delete(BodyPath(id));
        DirectorySync.Shared.Sync(Directory);
        return true;
    }

    /// <summary>Asks a running server to retry every pending recipient now (<c>slimmail queue flush</c>).</summary>
    public void RequestFlush() => File.WriteAllText(FlushRequestPath, DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// Where requests to the running server appear: a directory of its own, so that watching it does not wake
    /// the watcher for every message file created and removed in the queue (3 wake-ups per relayed message).
    /// </summary>
    public string ControlDirectory => Path.Combine(Directory, "control");

    /// <summary>The file whose appearance tells the running scheduler to retry now.</summary>
    public string FlushRequestPath => Path.Combine(ControlDirectory, "flush");

    internal string BodyPath(string id) => Path.Combine(Directory, id + ".msg");

    private string EnvelopePath(string id) => Path.Combine(Directory, id + ".env");

    private static bool IsValidId(string id) => id.Length is > 0 and <= 64 && id.AsSpan().IndexOfAnyExceptInRange('0', 'z') < 0
        && !id.Contains('/', StringComparison.Ordinal) && !id.Contains('\\', StringComparison.Ordinal);

    private QueueEnvelope? TryRead(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), QueueJsonContext.Default.QueueEnvelope);
        }
        catch (Exception e) when (e is FileNotFoundException or JsonException or IOException)
        {
            if (e is JsonException)
            {
                LogBadEnvelope(_logger, path, e.Message);
            }

            return null;
        }
    }

    // A new envelope is linked into place (false if one of that name exists); a changed one replaces the old by rename.
    private bool WriteEnvelope(QueueEnvelope envelope, bool replace)
    {
        string tmp = Path.Combine(_tmp, envelope.Id + ".env." + Environment.CurrentManagedThreadId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var file = new DurableFile(replace ? null : Directory, tmp, FileMode);
        file.Append(JsonSerializer.SerializeToUtf8Bytes(envelope, QueueJsonContext.Default.QueueEnvelope));
        file.FlushToDisk();
        return file.TryPublish(EnvelopePath(envelope.Id), replace);
    }

    private sealed class Writer : IDeliveryWriter
    {
        private readonly OutboundQueue _queue;
        private readonly string _sender;
        private readonly List<string> _recipients;
        private readonly bool _smtpUtf8;
        private DurableFile? _body;

        public Writer(OutboundQueue queue, string id, string sender, List<string> recipients, bool smtpUtf8)
        {
            _queue = queue;
            Id = id;
            _sender = sender;
            _recipients = recipients;
            _smtpUtf8 = smtpUtf8;
            _body = new DurableFile(queue.Directory, Path.Combine(queue._tmp, id + ".msg"), FileMode);
        }

        public string Id { get; private set; }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_body is null, this);
            _body.Append(data.Span);
            return default;
        }

        public async ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken)
        {
            DurableFile body = _body ?? throw new ObjectDisposedException(nameof(Writer));
            QueueEnvelope? envelope = null;
            Task durable = Task.CompletedTask;
            await BlockingIo.RunAsync(() =>
            {
                body.FlushToDisk();
                // A queue id is unique per process and second; a restart within the same second could reuse one.
                while (!body.TryPublish(_queue.BodyPath(Id)))
                {
                    Id = QueueIdGenerator.Next();
                }

                envelope = new QueueEnvelope
                {
                    Id = Id,
                    Sender = _sender,
                    Arrival = DateTimeOffset.UtcNow,
                    Size = body.Length,
                    SmtpUtf8 = _smtpUtf8,
                    Recipients = _recipients.ConvertAll(r => new QueueRecipient { Address = r, NextAttempt = DateTimeOffset.UtcNow }),
                };

                // The message is queued once its envelope exists (a body alone is removed at start).
                if (!_queue.WriteEnvelope(envelope, replace: false))
                {
                    throw new IOException($"{_queue.EnvelopePath(Id)} exists without its body");
                }

                // Both names become durable with one fsync of the queue directory, shared with every message
                // queued meanwhile: run here if none is running, else joined without holding this disk thread.
                durable = DirectorySync.Shared.SyncAsync(_queue.Directory);
            }).ConfigureAwait(false);
            await durable.ConfigureAwait(false);
            _queue.Queued?.Invoke(envelope!);
            return DeliveryOutcome.Delivered;
        }

        public ValueTask DisposeAsync()
        {
            _body?.Dispose();
            _body = null;
            return default;
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "queue: unreadable envelope {Path} left in place: {Error}")]
    private static partial void LogBadEnvelope(ILogger logger, string path, string error);
}
