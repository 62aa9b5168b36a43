using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Samples;

/// <summary>Options of <see cref="EncryptingMessageHandler"/> (configuration section <c>Encryption</c>).</summary>
public sealed class EncryptionOptions
{
    /// <summary>Where encrypted messages are written.</summary>
    public string OutputDirectory { get; set; } = "encrypted-mail";

    /// <summary>The AES-256 key, base64 (32 bytes). Keep it out of the configuration file in production: use an environment variable.</summary>
    public string Key { get; set; } = "";
}

/// <summary>
/// (b) Encrypts each message while it streams in, so no plaintext ever touches the disk: plaintext exists only
/// in one pooled 64 KB buffer, each full buffer is sealed with AES-GCM and appended to a temporary file, and
/// the end of data seals the last chunk, fsyncs the file and renames it into place before the <c>250</c>.
/// </summary>
public sealed class EncryptingMessageHandler : IMessageHandler
{
    private readonly string _directory;
    private readonly byte[] _key;

    /// <summary>Creates the handler from its options.</summary>
    public EncryptingMessageHandler(IOptions<EncryptionOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _key = Convert.FromBase64String(options.Value.Key);
        if (_key.Length != 32)
        {
            throw new ArgumentException("Encryption:Key must be 32 bytes, base64", nameof(options));
        }

        _directory = Path.GetFullPath(options.Value.OutputDirectory);
        Directory.CreateDirectory(Path.Combine(_directory, "tmp"));
    }

    /// <inheritdoc />
    public long MaxMessageSize => 50 * 1024 * 1024;

    /// <inheritdoc />
    public ValueTask<TransactionStart> BeginAsync(MailTransactionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        return ValueTask.FromResult(TransactionStart.Accept(new Transaction(this, context.QueueId)));
    }

    private sealed class Transaction : IMessageTransaction
    {
        private readonly EncryptingMessageHandler _owner;
        private readonly string _name;
        private readonly AesGcm _aes;
        private readonly byte[] _prefix = RandomNumberGenerator.GetBytes(EncryptedMessageFile.PrefixSize);
        private byte[]? _plain = ArrayPool<byte>.Shared.Rent(EncryptedMessageFile.ChunkSize);
        private readonly byte[] _sealed = new byte[4 + EncryptedMessageFile.ChunkSize + EncryptedMessageFile.TagSize];
        private FileStream? _file;
        private int _buffered;
        private uint _index;
        private bool _committed;

        public Transaction(EncryptingMessageHandler owner, string queueId)
        {
            _owner = owner;
            _name = queueId + "." + DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) + ".enc";
            _aes = new AesGcm(owner._key, EncryptedMessageFile.TagSize);
        }

        private string TmpPath => Path.Combine(_owner._directory, "tmp", _name);

        public ValueTask<SmtpReply> AddRecipientAsync(MailAddress recipient, CancellationToken cancellationToken) =>
            ValueTask.FromResult(SmtpReplies.RecipientOk);

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            while (!data.IsEmpty)
            {
                int take = Math.Min(data.Length, EncryptedMessageFile.ChunkSize - _buffered);
                data.Span[..take].CopyTo(_plain.AsSpan(_buffered));
                _buffered += take;
                data = data[take..];
                // A full chunk is sealed only when more data follows, so the last chunk is always known as last.
                if (_buffered == EncryptedMessageFile.ChunkSize && !data.IsEmpty)
                {
                    await SealAsync(last: false, cancellationToken);
                }
            }

            if (_buffered == EncryptedMessageFile.ChunkSize)
            {
                await SealAsync(last: false, cancellationToken);
            }
        }

        public async ValueTask<SmtpReply> CommitAsync(CancellationToken cancellationToken)
        {
            await SealAsync(last: true, cancellationToken);
            _file!.Flush(flushToDisk: true);
            await _file.DisposeAsync();
            _file = null;
            File.Move(TmpPath, Path.Combine(_owner._directory, _name));
            _committed = true;
            return SmtpReplies.Ok;
        }

        public async ValueTask DisposeAsync()
        {
            if (_file is not null)
            {
                await _file.DisposeAsync();
            }

            if (!_committed)
            {
                File.Delete(TmpPath);
            }

            if (_plain is not null)
            {
                CryptographicOperations.ZeroMemory(_plain);
                ArrayPool<byte>.Shared.Return(_plain);
                _plain = null;
            }

            _aes.Dispose();
        }

        private async ValueTask SealAsync(bool last, CancellationToken cancellationToken)
        {
            if (_file is null)
            {
                _file = new FileStream(TmpPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous);
                await _file.WriteAsync(EncryptedMessageFile.Magic.ToArray(), cancellationToken);
                await _file.WriteAsync(_prefix, cancellationToken);
            }

            int length = _buffered;
            Seal(length, last);
            _buffered = 0;
            _index++;
            await _file.WriteAsync(_sealed.AsMemory(0, 4 + length + EncryptedMessageFile.TagSize), cancellationToken);
        }

        private void Seal(int length, bool last)
        {
            Span<byte> nonce = stackalloc byte[12];
            EncryptedMessageFile.Nonce(nonce, _prefix, _index, last);
            BinaryPrimitives.WriteInt32BigEndian(_sealed, length);
            _aes.Encrypt(nonce, _plain.AsSpan(0, length), _sealed.AsSpan(4, length), _sealed.AsSpan(4 + length, EncryptedMessageFile.TagSize));
            CryptographicOperations.ZeroMemory(_plain.AsSpan(0, length));
        }
    }
}
