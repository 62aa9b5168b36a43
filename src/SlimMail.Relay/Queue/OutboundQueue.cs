using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using Microsoft.Extensions.Logging;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Relay.Queue;

/// <summary>
/// The durable outbound queue under <c>&lt;DataDirectory&gt;/queue/</c>. A queued message is one file,
/// <c>ID.msg</c>: the message as it will be sent (CRLF, the <c>Received:</c> header first), then its envelope
/// as it was accepted (JSON) and a footer giving the envelope's length. It is written in <c>tmp/</c>, fsync'd,
/// renamed into the queue directory, and the directory fsync'd (one fsync for every message named meanwhile)
/// before the client hears <c>250</c>: one file and one file fsync per message. Once an attempt changes a
/// recipient's state the envelope is rewritten beside it, <c>ID.env</c> (temporary file, fsync, rename,
/// directory fsync), and that file wins over the one inside <c>ID.msg</c>.
/// Removal takes <c>ID.msg</c> first, so an <c>ID.env</c> alone is what a crash left of a finished message.
/// (Queues written before the envelope went into <c>ID.msg</c> have an <c>ID.env</c> for every message, and
/// their bodies were exactly the message.)
/// As an <see cref="IDeliveryAgent"/> it is where <see cref="LocalDeliveryHandler"/> sends remote recipients.
/// </summary>
public sealed partial class OutboundQueue : IDeliveryAgent
{
    // Queued mail is nobody's but the server's.
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly string _tmp;
    private readonly string[] _directoryAlone; // what DirectorySync.Commit takes: the one directory messages are named in
    private readonly ILogger _logger;

    // Set when a write found a queue directory missing (removed while the server ran): the next message creates
    // them again instead of every message failing until a restart.
    private volatile bool _directoriesMissing;

    /// <summary>Opens (and creates) the queue in <paramref name="directory"/>.</summary>
    public OutboundQueue(string directory, ILogger logger)
    {
        Directory = Path.GetFullPath(directory);
        _tmp = Path.Combine(Directory, "tmp");
        _directoryAlone = [Directory];
        CreateDirectories();
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
    /// Every queued envelope, oldest first. Removes what a crash left behind: temporary files, envelopes of
    /// messages already removed, and bodies that end without an envelope (written by an older version, never
    /// acknowledged). A message whose envelope cannot be read is logged and left in place.
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

        string[] bodies = System.IO.Directory.GetFiles(Directory, "*.msg");
        var queued = new HashSet<string>(bodies.Length, StringComparer.Ordinal);
        foreach (string body in bodies)
        {
            queued.Add(Path.GetFileNameWithoutExtension(body));
        }

        var rewritten = new HashSet<string>(StringComparer.Ordinal);
        foreach (string file in System.IO.Directory.GetFiles(Directory, "*.env"))
        {
            string id = Path.GetFileNameWithoutExtension(file);
            if (queued.Contains(id))
            {
                rewritten.Add(id);
            }
            else if (cleanUp)
            {
                File.Delete(file);
            }
        }

        foreach (string body in bodies)
        {
            string id = Path.GetFileNameWithoutExtension(body);
            bool noTrailer = false;
            QueueEnvelope? envelope = rewritten.Contains(id) ? TryReadEnvelopeFile(EnvelopePath(id)) : TryReadTrailer(body, out noTrailer);
            if (envelope is not null)
            {
                envelopes.Add(envelope);
            }
            else if (cleanUp && noTrailer)
            {
                File.Delete(body);
            }
        }

        envelopes.Sort((a, b) => a.Arrival.CompareTo(b.Arrival));
        return envelopes;
    }

    /// <summary>True while the message is queued (not delivered, bounced or deleted).</summary>
    public bool Contains(string id) => IsValidId(id) && File.Exists(BodyPath(id));

    /// <summary>Reads one envelope, or null when it is gone (delivered, deleted) or unreadable.</summary>
    public QueueEnvelope? Find(string id)
    {
        if (!IsValidId(id))
        {
            return null;
        }

        return TryReadEnvelopeFile(EnvelopePath(id)) ?? TryReadTrailer(BodyPath(id), out _);
    }

    /// <summary>The message to send: the first <see cref="QueueEnvelope.Size"/> bytes of its file.</summary>
    public byte[] ReadBody(QueueEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        using SafeFileHandle file = File.OpenHandle(BodyPath(envelope.Id));
        byte[] body = new byte[envelope.Size];
        int read = 0;
        while (read < body.Length)
        {
            int n = RandomAccess.Read(file, body.AsSpan(read), read);
            if (n == 0)
            {
                throw new IOException($"{BodyPath(envelope.Id)} is shorter than its message ({envelope.Size} bytes)");
            }

            read += n;
        }

        return body;
    }

    /// <summary>
    /// Writes the envelope's new state durably. Returns false when the message was deleted meanwhile
    /// (<c>slimmail queue delete</c>): then nothing is written back.
    /// </summary>
    public bool Save(QueueEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (!File.Exists(BodyPath(envelope.Id)))
        {
            return false;
        }

        string tmp = Path.Combine(_tmp, envelope.Id + ".env." + Environment.CurrentManagedThreadId.ToString(CultureInfo.InvariantCulture));
        using (var file = new DurableFile(tmp, FileMode))
        {
            file.Append(JsonSerializer.SerializeToUtf8Bytes(envelope, QueueJsonContext.Default.QueueEnvelope));
            file.FlushToDisk();
            file.TryPublish(EnvelopePath(envelope.Id), replace: true);
        }

        DirectorySync.Shared.Sync(Directory);
        return true;
    }

    /// <summary>Removes a message (finished, or deleted by the administrator); false if there was none.</summary>
    public bool Remove(string id)
    {
        if (!Contains(id))
        {
            return false;
        }

        // The message goes first: an envelope without it is what the next start removes.
        File.Delete(BodyPath(id));
        File.Delete(EnvelopePath(id));
        DirectorySync.Shared.Sync(Directory);
        return true;
    }

    /// <summary>Asks a running server to retry every pending recipient now (<c>slimmail queue flush</c>).</summary>
    public void RequestFlush() => File.WriteAllText(FlushRequestPath, DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));

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

    // The envelope as accepted, from the end of ID.msg: JSON, then the footer "\nslimmail-envelope NNNNNNNN\n".
    // noTrailer tells a file that has none (an older version's body) from one whose envelope is damaged.
    private QueueEnvelope? TryReadTrailer(string path, out bool noTrailer)
    {
        noTrailer = false;
        try
        {
            using SafeFileHandle file = File.OpenHandle(path);
            long length = RandomAccess.GetLength(file);
            Span<byte> footer = stackalloc byte[Footer.Length];
            if (length < footer.Length || RandomAccess.Read(file, footer, length - footer.Length) != footer.Length
                || !Footer.TryParse(footer, out int jsonLength) || jsonLength > length - footer.Length)
            {
                noTrailer = true;
                return null;
            }

            byte[] json = new byte[jsonLength];
            long offset = length - footer.Length - jsonLength;
            if (RandomAccess.Read(file, json, offset) != jsonLength)
            {
                throw new IOException($"{path}: short read");
            }

            QueueEnvelope? envelope = JsonSerializer.Deserialize(json, QueueJsonContext.Default.QueueEnvelope);
            if (envelope is null || envelope.Size != offset || envelope.Id != Path.GetFileNameWithoutExtension(path))
            {
                throw new JsonException($"the envelope does not match its file (size {envelope?.Size}, message {offset} bytes)");
            }

            return envelope;
        }
        catch (Exception e) when (e is FileNotFoundException or JsonException or IOException)
        {
            if (e is not FileNotFoundException)
            {
                LogBadEnvelope(_logger, path, e.Message);
            }

            return null;
        }
    }

    private QueueEnvelope? TryReadEnvelopeFile(string path)
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

    /// <summary>The last line of a queued message's file: the length of the envelope before it.</summary>
    private static class Footer
    {
        private static ReadOnlySpan<byte> Prefix => "\nslimmail-envelope "u8;

        public static int Length => Prefix.Length + 9; // 8 digits and a newline

        public static byte[] For(int jsonLength)
        {
            byte[] footer = new byte[Length];
            Prefix.CopyTo(footer);
            Encoding.ASCII.GetBytes(jsonLength.ToString("D8", CultureInfo.InvariantCulture), footer.AsSpan(Prefix.Length));
            footer[^1] = (byte)'\n';
            return footer;
        }

        public static bool TryParse(ReadOnlySpan<byte> footer, out int jsonLength)
        {
            jsonLength = 0;
            return footer.StartsWith(Prefix) && footer[^1] == (byte)'\n'
                && int.TryParse(footer[Prefix.Length..^1], NumberStyles.None, CultureInfo.InvariantCulture, out jsonLength);
        }
    }

    private sealed class Writer : IDeliveryWriter
    {
        private readonly OutboundQueue _queue;
        private readonly string _sender;
        private readonly List<string> _recipients;
        private readonly bool _smtpUtf8;
        private DurableFile? _file;

        public Writer(OutboundQueue queue, string id, string sender, List<string> recipients, bool smtpUtf8)
        {
            _queue = queue;
            Id = id;
            _sender = sender;
            _recipients = recipients;
            _smtpUtf8 = smtpUtf8;
            if (queue._directoriesMissing)
            {
                queue._directoriesMissing = false;
                queue.CreateDirectories();
            }

            _file = new DurableFile(Path.Combine(queue._tmp, id + ".msg"), FileMode);
        }

        public string Id { get; }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_file is null, this);
            Append(_file, data.Span);
            return default;
        }

        public async ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken)
        {
            DurableFile file = _file ?? throw new ObjectDisposedException(nameof(Writer));
            var envelope = new QueueEnvelope
            {
                Id = Id,
                Sender = _sender,
                Arrival = DateTimeOffset.UtcNow,
                Size = file.Length,
                SmtpUtf8 = _smtpUtf8,
                Recipients = _recipients.ConvertAll(r => new QueueRecipient { Address = r, NextAttempt = DateTimeOffset.UtcNow }),
            };
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(envelope, QueueJsonContext.Default.QueueEnvelope);
            Append(file, json);
            Append(file, Footer.For(json.Length));
            Task durable = Task.CompletedTask;
            await BlockingIo.RunAsync(() =>
            {
                try
                {
                    // Durable with one fsync of the queue directory, shared with every message queued meanwhile
                    // (announced before the file's fsync, so that a directory fsync starting meanwhile waits for it).
                    durable = DirectorySync.Shared.Commit(_queue._directoryAlone, announce: true, () =>
                    {
                        file.FlushToDisk();
                        // Ids are unique per process and second, so a name can only be taken after a restart within
                        // the same second: the client is told to try again (451) and gets a new id.
                        if (!file.TryPublish(_queue.BodyPath(Id)))
                        {
                            throw new IOException($"queue id {Id} is in use");
                        }
                    })[0];
                }
                catch (DirectoryNotFoundException)
                {
                    _queue._directoriesMissing = true;
                    throw;
                }
            }).ConfigureAwait(false);
            await durable.ConfigureAwait(false);
            _queue.Queued?.Invoke(envelope);
            return DeliveryOutcome.Delivered;
        }

        // The first write past the buffer creates the file in tmp/: a missing directory is noted for the next message.
        private void Append(DurableFile file, ReadOnlySpan<byte> data)
        {
            try
            {
                file.Append(data);
            }
            catch (DirectoryNotFoundException)
            {
                _queue._directoriesMissing = true;
                throw;
            }
        }

        public ValueTask DisposeAsync()
        {
            _file?.Dispose();
            _file = null;
            return default;
        }
    }

    private void CreateDirectories()
    {
        System.IO.Directory.CreateDirectory(_tmp);
        System.IO.Directory.CreateDirectory(ControlDirectory);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "queue: unreadable envelope {Path} left in place: {Error}")]
    private static partial void LogBadEnvelope(ILogger logger, string path, string error);
}
