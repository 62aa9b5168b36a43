using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace SlimMail.Delivery;

/// <summary>
/// POP3's view of Maildirs. Opening a mailbox takes an exclusive lock (a lock file held with an OS lock, so
/// other processes are excluded too), moves <c>new/</c> into <c>cur/</c> as Maildir readers do, and lists
/// <c>cur/</c>. The unique id is the Maildir unique name, which never changes; the size comes from the
/// <c>W=</c> field SlimMail writes (CRLF size), or is counted from the file.
/// </summary>
public sealed class MaildirMailboxStore : IMailboxStore
{
    private const string LockFileName = "slimmail-pop3.lock";

    private readonly Func<string, MaildirMailbox?> _mailboxes;
    private readonly ConcurrentDictionary<string, byte> _open = new(StringComparer.Ordinal);

    /// <summary>Creates the store over the Maildirs <paramref name="mailboxes"/> returns for a user.</summary>
    public MaildirMailboxStore(Func<string, MaildirMailbox?> mailboxes) => _mailboxes = mailboxes;

    /// <inheritdoc />
    public ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken) =>
        // Listing a maildrop reads a directory and every file's name (tens of milliseconds for tens of thousands
        // of messages): on the thread pool, not on the calling socket thread.
        new(Task.Run<IMailboxSession?>(() => Open(user), CancellationToken.None));

    private Session? Open(string user)
    {
        MaildirMailbox? mailbox = _mailboxes(user);
        if (mailbox is null)
        {
            return null;
        }

        for (int attempt = 0; ; attempt++)
        {
            mailbox.EnsureCreated();
            if (!_open.TryAdd(mailbox.Root, 0))
            {
                return null;
            }

            FileStream? lockFile = null;
            try
            {
                lockFile = new FileStream(Path.Combine(mailbox.Root, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                var session = new Session(this, mailbox, lockFile);
                lockFile = null;
                return session;
            }
            catch (DirectoryNotFoundException) when (attempt == 0)
            {
                // The Maildir was removed or moved while the server ran: created again, as a delivery does.
                _open.TryRemove(mailbox.Root, out _);
                mailbox.ForgetCreatedDirectories();
            }
            catch (IOException)
            {
                // Held by another process.
                _open.TryRemove(mailbox.Root, out _);
                return null;
            }
            finally
            {
                lockFile?.Dispose();
            }
        }
    }

    /// <summary>The unique part of a Maildir file name: everything before the first ',' or ':'.</summary>
    internal static string UniquePart(string fileName)
    {
        int end = fileName.AsSpan().IndexOfAny(',', ':');
        return end < 0 ? fileName : fileName[..end];
    }

    private sealed class Session : IMailboxSession
    {
        private readonly MaildirMailboxStore _store;
        private readonly MaildirMailbox _mailbox;
        private readonly FileStream _lock;
        private readonly List<string> _names = [];

        // cur/, open for the session where the system allows: a RETR then resolves one name, not a whole path.
        private readonly SafeFileHandle? _cur;

        public Session(MaildirMailboxStore store, MaildirMailbox mailbox, FileStream lockFile)
        {
            _store = store;
            _mailbox = mailbox;
            _lock = lockFile;
            foreach (string path in Directory.EnumerateFiles(mailbox.New))
            {
                string name = Path.GetFileName(path);
                try
                {
                    File.Move(path, Path.Combine(mailbox.Cur, name + ":2,"));
                }
                catch (FileNotFoundException)
                {
                }
            }

            // Arrival order: the name's seconds, then its microseconds (unpadded, "M123"), then the name.
            var entries = new List<(long Seconds, long Micros, string Name, string Path)>();
            foreach (string path in Directory.EnumerateFiles(mailbox.Cur))
            {
                string name = Path.GetFileName(path);
                (long seconds, long micros) = ArrivalOf(name);
                entries.Add((seconds, micros, name, path));
            }

            entries.Sort((a, b) => a.Seconds != b.Seconds ? a.Seconds.CompareTo(b.Seconds)
                : a.Micros != b.Micros ? a.Micros.CompareTo(b.Micros)
                : string.CompareOrdinal(a.Name, b.Name));
            var messages = new List<MailboxMessage>(entries.Count);
            foreach ((_, _, string name, string path) in entries)
            {
                _names.Add(name);
                messages.Add(new MailboxMessage(UniqueId(name), SizeOf(name, path)));
            }

            Messages = messages;
            _cur = Posix.OpenDirectory(mailbox.Cur);
        }

        public IReadOnlyList<MailboxMessage> Messages { get; }

        private static (long Seconds, long Micros) ArrivalOf(string name)
        {
            ReadOnlySpan<char> rest = name;
            int dot = rest.IndexOf('.');
            if (dot <= 0 || !long.TryParse(rest[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out long seconds))
            {
                return (0, 0);
            }

            rest = rest[(dot + 1)..];
            if (!rest.StartsWith('M'))
            {
                return (seconds, 0);
            }

            rest = rest[1..];
            int digits = rest.IndexOfAnyExceptInRange('0', '9');
            _ = long.TryParse(digits < 0 ? rest : rest[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out long micros);
            return (seconds, micros);
        }

        public ValueTask<Stream> OpenReadAsync(int index, CancellationToken cancellationToken) =>
            ValueTask.FromResult<Stream>(_cur is null ? new MessageFileStream(PathOf(index))
                : new MessageFileStream(_cur, _mailbox.Cur, _names[index]));

        public ValueTask DeleteAsync(IReadOnlyCollection<int> indexes, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(indexes);
            if (indexes.Count == 0)
            {
                return default;
            }

            // Unlinks and a directory fsync: on a disk thread.
            return new ValueTask(BlockingIo.RunAsync(() =>
            {
                foreach (int index in indexes)
                {
                    File.Delete(PathOf(index));
                }

                Posix.FsyncDirectory(_mailbox.Cur);
            }));
        }

        private string PathOf(int index) => Path.Combine(_mailbox.Cur, _names[index]);

        public ValueTask DisposeAsync()
        {
            _cur?.Dispose();
            _lock.Dispose();
            _store._open.TryRemove(_mailbox.Root, out _);
            return default;
        }

        // UIDL allows printable ASCII without spaces, up to 70 characters.
        private static string UniqueId(string fileName)
        {
            string unique = UniquePart(fileName);
            Span<char> result = stackalloc char[Math.Min(unique.Length, 70)];
            for (int i = 0; i < result.Length; i++)
            {
                char c = unique[i];
                result[i] = c is > ' ' and < (char)127 ? c : '_';
            }

            return new string(result);
        }

        private static long SizeOf(string name, string path)
        {
            // Dovecot's convention: ",W=<size with CRLF>" in the name.
            int w = name.IndexOf(",W=", StringComparison.Ordinal);
            if (w >= 0)
            {
                ReadOnlySpan<char> digits = name.AsSpan(w + 3);
                int end = digits.IndexOfAny(',', ':');
                if (long.TryParse(end < 0 ? digits : digits[..end], NumberStyles.None, CultureInfo.InvariantCulture, out long size))
                {
                    return size;
                }
            }

            return Pop3.Pop3MessageWriter.CountCrlfSize(path);
        }
    }
}
