using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// Delivers into Maildirs (https://cr.yp.to/proto/maildir.html) durably: write the file (unnamed in
/// <c>new/</c> on Linux, else in <c>tmp/</c>), fsync it, link (or rename) it into <c>new/</c>, fsync the
/// directory; only then is the message reported delivered.
/// Line endings become LF as Postfix and Dovecot store them. One message for several users is written
/// once and hard-linked where the users' files would be identical.
/// </summary>
public sealed class MaildirStore : IDeliveryAgent
{
    private static readonly string HostPart = EscapeHost(Environment.MachineName);
    private static readonly int ProcessId = Environment.ProcessId;
    private static long _sequence;

    private readonly Func<string, MaildirMailbox?> _mailboxes;
    private readonly DirectorySync _directorySync;

    /// <summary>Creates a store over the Maildirs <paramref name="mailboxes"/> returns for a user name.</summary>
    public MaildirStore(Func<string, MaildirMailbox?> mailboxes)
        : this(mailboxes, DirectorySync.Shared)
    {
    }

    internal MaildirStore(Func<string, MaildirMailbox?> mailboxes, DirectorySync directorySync)
    {
        _mailboxes = mailboxes;
        _directorySync = directorySync;
    }

    /// <inheritdoc />
    public string DeliveryType => "maildir";

    /// <inheritdoc />
    public ValueTask<IDeliveryWriter> BeginAsync(MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        var targets = new MaildirMailbox[recipients.Count];
        for (int i = 0; i < recipients.Count; i++)
        {
            string user = recipients[i].User;
            targets[i] = _mailboxes(user) ?? throw new InvalidOperationException($"user {user} has no Maildir");
            targets[i].EnsureCreated();
        }

        return ValueTask.FromResult<IDeliveryWriter>(new Writer(targets, _directorySync));
    }

    /// <summary>A Maildir unique name: <c>seconds.MmicrosPpidQn.host</c>.</summary>
    internal static string NewUniqueName()
    {
        long ticks = DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks;
        long seconds = ticks / TimeSpan.TicksPerSecond;
        long micros = ticks % TimeSpan.TicksPerSecond / 10;
        long n = Interlocked.Increment(ref _sequence);
        return string.Create(CultureInfo.InvariantCulture, $"{seconds}.M{micros}P{ProcessId}Q{n}.{HostPart}");
    }

    // The Maildir convention: '/' and ':' in the host name are written as octal escapes.
    private static string EscapeHost(string host) => host.Replace("/", "\\057", StringComparison.Ordinal)
        .Replace(":", "\\072", StringComparison.Ordinal);

    private sealed class Writer : IDeliveryWriter
    {
        private const int BufferSize = 64 * 1024;

        private readonly MaildirMailbox[] _targets;
        private readonly DirectorySync _directorySync;
        private readonly string _uniqueName;
        private SafeFileHandle? _file;
        private string? _tmpPath; // null while the file is unnamed (O_TMPFILE) or not yet created
        private byte[]? _buffer;
        private int _buffered;
        private long _fileOffset;
        private long _receivedBytes;
        private bool _committed;

        public Writer(MaildirMailbox[] targets, DirectorySync directorySync)
        {
            _targets = targets;
            _directorySync = directorySync;
            _uniqueName = NewUniqueName();
            _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            _receivedBytes += data.Length;
            ReadOnlySpan<byte> rest = data.Span;
            // Bare CRs never reach a committed message (the engine rejects them), so every CR is half a CRLF.
            while (!rest.IsEmpty)
            {
                int cr = rest.IndexOf((byte)'\r');
                ReadOnlySpan<byte> run = cr < 0 ? rest : rest[..cr];
                Append(run);
                rest = cr < 0 ? default : rest[(cr + 1)..];
            }

            return default;
        }

        public async ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken)
        {
            // Dovecot's convention: S= is the file size, W= the size with CRLF line endings (what POP3 sends).
            Task[] durable = new Task[_targets.Length];
            await BlockingIo.RunAsync(() =>
            {
                FlushBuffer();
                SafeFileHandle file = _file ?? Create();
                Posix.FlushToDisk(file);
                string finalName = string.Create(CultureInfo.InvariantCulture, $"{_uniqueName},S={_fileOffset},W={_receivedBytes}");
                MaildirMailbox primary = _targets[0];
                for (int i = 1; i < _targets.Length; i++)
                {
                    MaildirMailbox other = _targets[i];
                    bool sameFile = other.FileMode == primary.FileMode && other.Owner == primary.Owner;
                    string otherPath = Path.Combine(other.New, finalName);
                    bool linked = sameFile && (_tmpPath is null ? Posix.LinkOpenFile(file, otherPath) : Posix.TryLink(_tmpPath, otherPath));
                    if (!linked)
                    {
                        CopyInto(file, other, otherPath);
                    }
                }

                Publish(file, _tmpPath, Path.Combine(primary.New, finalName));
                file.Dispose();
                _file = null;
                _committed = true;

                // The links become durable with an fsync of each new/, shared with every message linked meanwhile:
                // run here if none is running, else joined without holding this disk thread.
                for (int i = 0; i < _targets.Length; i++)
                {
                    durable[i] = _directorySync.SyncAsync(_targets[i].New);
                }
            }).ConfigureAwait(false);

            foreach (Task sync in durable)
            {
                await sync.ConfigureAwait(false);
            }

            return DeliveryOutcome.Delivered;
        }

        public ValueTask DisposeAsync()
        {
            // An unnamed file disappears with its descriptor; a named one in tmp/ is removed.
            _file?.Dispose();
            _file = null;
            if (!_committed && _tmpPath is not null)
            {
                try
                {
                    File.Delete(_tmpPath);
                }
                catch (IOException)
                {
                }
            }

            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }

            return default;
        }

        private void Append(ReadOnlySpan<byte> bytes)
        {
            while (!bytes.IsEmpty)
            {
                int n = Math.Min(bytes.Length, BufferSize - _buffered);
                bytes[..n].CopyTo(_buffer.AsSpan(_buffered));
                _buffered += n;
                bytes = bytes[n..];
                if (_buffered == BufferSize)
                {
                    FlushBuffer();
                }
            }
        }

        // Small messages reach the disk in one write at commit; large ones 64 KB at a time.
        private void FlushBuffer()
        {
            if (_buffered == 0)
            {
                return;
            }

            SafeFileHandle file = _file ?? Create();
            Posix.WriteAt(file, _buffer.AsSpan(0, _buffered), _fileOffset);
            _fileOffset += _buffered;
            _buffered = 0;
        }

        private SafeFileHandle Create()
        {
            _file = CreateFile(_targets[0], _uniqueName, out _tmpPath);
            return _file;
        }

        private void CopyInto(SafeFileHandle source, MaildirMailbox other, string finalPath)
        {
            using SafeFileHandle target = CreateFile(other, _uniqueName, out string? tmpPath);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            try
            {
                long offset = 0;
                int n;
                while ((n = Posix.ReadAt(source, buffer, offset)) > 0)
                {
                    Posix.WriteAt(target, buffer.AsSpan(0, n), offset);
                    offset += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            Posix.FlushToDisk(target);
            Publish(target, tmpPath, finalPath);
        }

        /// <summary>
        /// Creates the message file: unnamed inside <c>new/</c> where Linux allows it, so that nothing is
        /// ever half-visible and a crash leaves no <c>tmp/</c> debris — and one directory entry per message,
        /// not a create in <c>tmp/</c> and a rename across directories (which serialises on the file system's
        /// rename lock). Otherwise in <c>tmp/</c> as the Maildir convention says; <paramref name="tmpPath"/> names it.
        /// </summary>
        private static SafeFileHandle CreateFile(MaildirMailbox mailbox, string uniqueName, out string? tmpPath)
        {
            SafeFileHandle? handle = Posix.TryOpenUnnamed(mailbox.New, mailbox.FileMode);
            tmpPath = null;
            if (handle is null)
            {
                tmpPath = Path.Combine(mailbox.Tmp, uniqueName);
                handle = File.OpenHandle(tmpPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            }

            if (!OperatingSystem.IsWindows())
            {
                // Created under the umask (or a default ACL); set the configured mode exactly before any byte is written.
                File.SetUnixFileMode(handle, mailbox.FileMode);
                if (mailbox.Owner is { } owner && Posix.IsRoot)
                {
                    Posix.Chown(handle, owner.Uid, owner.Gid);
                }
            }

            return handle;
        }

        private static void Publish(SafeFileHandle file, string? tmpPath, string finalPath)
        {
            if (tmpPath is not null)
            {
                File.Move(tmpPath, finalPath);
            }
            else if (!Posix.LinkOpenFile(file, finalPath))
            {
                throw new IOException($"{finalPath} already exists");
            }
        }
    }
}
