using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// Delivers into Maildirs (https://cr.yp.to/proto/maildir.html) durably: write the file in <c>tmp/</c>,
/// fsync it, rename it into <c>new/</c>, fsync the directory; only then is the message reported delivered.
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
        private readonly MaildirMailbox[] _targets;
        private readonly DirectorySync _directorySync;
        private readonly string _uniqueName;
        private DurableFile? _file;
        private long _receivedBytes;

        public Writer(MaildirMailbox[] targets, DirectorySync directorySync)
        {
            _targets = targets;
            _directorySync = directorySync;
            _uniqueName = NewUniqueName();
            _file = NewFile(targets[0], _uniqueName);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            ObjectDisposedException.ThrowIf(_file is null, this);
            _receivedBytes += data.Length;
            ReadOnlySpan<byte> rest = data.Span;
            // Bare CRs never reach a committed message (the engine rejects them), so every CR is half a CRLF.
            try
            {
                while (!rest.IsEmpty)
                {
                    int cr = rest.IndexOf((byte)'\r');
                    _file.Append(cr < 0 ? rest : rest[..cr]);
                    rest = cr < 0 ? default : rest[(cr + 1)..];
                }
            }
            catch (DirectoryNotFoundException)
            {
                ForgetCreatedDirectories();
                throw;
            }

            return default;
        }

        [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
        public async ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken)
        {
            DurableFile file = _file ?? throw new ObjectDisposedException(nameof(Writer));
            // Dovecot's convention: S= is the file size, W= the size with CRLF line endings (what POP3 sends).
            Task[] durable = [];
            await BlockingIo.RunAsync(() =>
            {
                // Announced to the group commit of each new/ (DirectorySync.Commit), so that a directory fsync
                // starting meanwhile waits for this message instead of leaving it to one more fsync of its own —
                // unless a copy for another user is to be written too: no directory fsync should wait for a large copy.
                MaildirMailbox primary = _targets[0];
                bool linksOnly = true;
                for (int i = 1; i < _targets.Length; i++)
                {
                    linksOnly &= SameFile(primary, _targets[i]);
                }

                try
                {
                    durable = _directorySync.Commit(NewDirectories(), linksOnly, () =>
                    {
                        file.FlushToDisk();
                        string finalName = string.Create(CultureInfo.InvariantCulture, $"{_uniqueName},S={file.Length},W={_receivedBytes}");
                        for (int i = 1; i < _targets.Length; i++)
                        {
                            MaildirMailbox other = _targets[i];
                            string otherPath = Path.Combine(other.New, finalName);
                            if (!SameFile(primary, other) || !file.TryLinkAlso(otherPath))
                            {
                                CopyInto(file.Handle, other, otherPath);
                            }
                        }

                        Publish(file, Path.Combine(primary.New, finalName));
                    });
                }
                catch (DirectoryNotFoundException)
                {
                    ForgetCreatedDirectories();
                    throw;
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
            _file?.Dispose();
            _file = null;
            return default;
        }

        private string[] NewDirectories()
        {
            var directories = new string[_targets.Length];
            for (int i = 0; i < _targets.Length; i++)
            {
                directories[i] = _targets[i].New;
            }

            return directories;
        }

        // This message fails (the client retries); the next one finds the directories created again.
        private void ForgetCreatedDirectories()
        {
            foreach (MaildirMailbox target in _targets)
            {
                target.ForgetCreatedDirectories();
            }
        }

        // One file can serve both users (a hard link) when it would get the same mode and owner for each.
        private static bool SameFile(MaildirMailbox a, MaildirMailbox b) => a.FileMode == b.FileMode && a.Owner == b.Owner;

        /// <summary>
        /// The message file, written in a staging directory under <c>tmp/</c> (see <see cref="DurableFile"/> for why
        /// not unnamed, <see cref="MaildirMailbox.NextStagingDirectory"/> for why not in <c>tmp/</c> itself).
        /// </summary>
        private static DurableFile NewFile(MaildirMailbox mailbox, string uniqueName) =>
            new(Path.Combine(mailbox.NextStagingDirectory(), uniqueName), mailbox.FileMode, mailbox.Owner);

        private void CopyInto(SafeFileHandle source, MaildirMailbox other, string finalPath)
        {
            using DurableFile target = NewFile(other, _uniqueName);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
            try
            {
                long offset = 0;
                int n;
                while ((n = Posix.ReadAt(source, buffer, offset)) > 0)
                {
                    target.Append(buffer.AsSpan(0, n));
                    offset += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            target.FlushToDisk();
            Publish(target, finalPath);
        }

        private static void Publish(DurableFile file, string finalPath)
        {
            if (!file.TryPublish(finalPath))
            {
                throw new IOException($"{finalPath} already exists");
            }
        }
    }
}
