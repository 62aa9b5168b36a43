using System.Buffers;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using SlimMail.Delivery;

namespace SlimMail.PostgreSql;

/// <summary>
/// <c>Type: PostgreSql</c>: keeps each message with its envelope in <c>slimmail.messages</c>, one row per
/// user, all rows of a message in one transaction committed before the <c>250</c>; and serves those users'
/// mailboxes to POP3 (list, retrieve, delete at <c>QUIT</c>). The schema is created and migrated on first
/// use. When the database cannot be reached a delivery is a temporary failure (<c>451 4.3.0</c>), so the
/// client keeps the message and retries; nothing is lost.
/// </summary>
public sealed partial class PostgreSqlStore : IDeliveryAgent, IMailboxStore, IAsyncDisposable
{
    // Advisory lock class for POP3 maildrop locks; the second key is the user name's hash.
    private const int MaildropLockClass = 0x534D_4D44;

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _schemaGate = new(1, 1);
    private volatile bool _schemaReady;

    /// <summary>Creates the store for <paramref name="connectionString"/> (an Npgsql connection string).</summary>
    public PostgreSqlStore(string connectionString, ILogger logger)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
        _logger = logger;
    }

    /// <inheritdoc />
    public string DeliveryType => "postgresql";

    /// <summary>
    /// Creates or migrates the schema now, so a start-up can report a bad connection string or an
    /// unreachable server at once; deliveries also do it themselves when it has not happened yet.
    /// </summary>
    /// <returns>The number of migrations applied.</returns>
    public async Task<int> EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        if (_schemaReady)
        {
            return 0;
        }

        await _schemaGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_schemaReady)
            {
                return 0;
            }

            int applied = await SchemaMigrator.MigrateAsync(_dataSource, cancellationToken).ConfigureAwait(false);
            _schemaReady = true;
            if (applied > 0)
            {
                LogMigrated(_logger, applied);
            }

            return applied;
        }
        finally
        {
            _schemaGate.Release();
        }
    }

    /// <inheritdoc />
    public ValueTask<IDeliveryWriter> BeginAsync(MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients, CancellationToken cancellationToken) =>
        ValueTask.FromResult<IDeliveryWriter>(new Writer(this, context, recipients));

    /// <inheritdoc />
    public async ValueTask<IMailboxSession?> OpenAsync(string user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        NpgsqlConnection? connection = null;
        try
        {
            await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
            connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (var lockCommand = new NpgsqlCommand("SELECT pg_try_advisory_lock($1, hashtext($2))", connection))
            {
                lockCommand.Parameters.Add(new NpgsqlParameter { Value = MaildropLockClass });
                lockCommand.Parameters.Add(new NpgsqlParameter { Value = user });
                if (await lockCommand.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                    return null;
                }
            }

            var ids = new List<Guid>();
            var messages = new List<MailboxMessage>();
            await using (var list = new NpgsqlCommand("SELECT message_uid, size FROM slimmail.messages WHERE user_name = $1 ORDER BY id", connection))
            {
                list.Parameters.Add(new NpgsqlParameter { Value = user });
                await using NpgsqlDataReader reader = await list.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    Guid id = reader.GetGuid(0);
                    ids.Add(id);
                    messages.Add(new MailboxMessage(id.ToString("N"), reader.GetInt64(1)));
                }
            }

            var session = new MailboxSession(connection, user, ids, messages);
            connection = null;
            return session;
        }
        catch (NpgsqlException e)
        {
            throw new IOException("The PostgreSQL mailbox store cannot be reached: " + e.Message, e);
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _dataSource.DisposeAsync().ConfigureAwait(false);
        _schemaGate.Dispose();
    }

    private async Task InsertAsync(MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients, ReadOnlyMemory<byte> body,
        CancellationToken cancellationToken)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await using NpgsqlConnection connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            foreach (DeliveryRecipient recipient in recipients)
            {
                var insert = new NpgsqlBatchCommand(
                    "INSERT INTO slimmail.messages (message_uid, queue_id, user_name, sender, recipient, size, body) VALUES ($1, $2, $3, $4, $5, $6, $7)");
                insert.Parameters.Add(new NpgsqlParameter { Value = Guid.CreateVersion7() });
                insert.Parameters.Add(new NpgsqlParameter { Value = context.QueueId });
                insert.Parameters.Add(new NpgsqlParameter { Value = recipient.User });
                insert.Parameters.Add(new NpgsqlParameter { Value = context.Sender?.ToString() ?? "" });
                insert.Parameters.Add(new NpgsqlParameter { Value = recipient.Address.ToString() });
                insert.Parameters.Add(new NpgsqlParameter { Value = (long)body.Length });
                insert.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>> { TypedValue = body, NpgsqlDbType = NpgsqlDbType.Bytea });
                batch.BatchCommands.Add(insert);
            }

            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    private sealed class Writer : IDeliveryWriter
    {
        private readonly PostgreSqlStore _owner;
        private readonly MailTransactionContext _context;
        private readonly IReadOnlyList<DeliveryRecipient> _recipients;
        private readonly ArrayBufferWriter<byte> _body;

        public Writer(PostgreSqlStore owner, MailTransactionContext context, IReadOnlyList<DeliveryRecipient> recipients)
        {
            _owner = owner;
            _context = context;
            _recipients = recipients;
            _body = new ArrayBufferWriter<byte>(context.DeclaredSize is > 0 and < 64 * 1024 * 1024 ? (int)context.DeclaredSize + 1024 : 16 * 1024);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            _body.Write(data.Span);
            return default;
        }

        public async ValueTask<DeliveryOutcome> CommitAsync(CancellationToken cancellationToken)
        {
            try
            {
                await _owner.InsertAsync(_context, _recipients, _body.WrittenMemory, cancellationToken).ConfigureAwait(false);
                return DeliveryOutcome.Delivered;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                // Whatever went wrong, the client still holds the message: it retries and nothing is lost.
                LogStoreFailed(_owner._logger, _context.QueueId, e.Message);
                return DeliveryOutcome.TemporaryFailure;
            }
        }

        public ValueTask DisposeAsync()
        {
            _body.Clear();
            return default;
        }
    }

    private sealed class MailboxSession : IMailboxSession
    {
        private readonly NpgsqlConnection _connection;
        private readonly string _user;
        private readonly List<Guid> _ids;

        public MailboxSession(NpgsqlConnection connection, string user, List<Guid> ids, List<MailboxMessage> messages)
        {
            _connection = connection;
            _user = user;
            _ids = ids;
            Messages = messages;
        }

        public IReadOnlyList<MailboxMessage> Messages { get; }

        public async ValueTask<Stream> OpenReadAsync(int index, CancellationToken cancellationToken)
        {
            try
            {
                await using var query = new NpgsqlCommand("SELECT body FROM slimmail.messages WHERE message_uid = $1", _connection);
                query.Parameters.Add(new NpgsqlParameter { Value = _ids[index] });
                if (await query.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is byte[] body)
                {
                    return new MemoryStream(body, writable: false);
                }

                throw new IOException("The message was deleted by another program.");
            }
            catch (NpgsqlException e)
            {
                throw new IOException("The PostgreSQL mailbox store cannot be reached: " + e.Message, e);
            }
        }

        public async ValueTask DeleteAsync(IReadOnlyCollection<int> indexes, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(indexes);
            if (indexes.Count == 0)
            {
                return;
            }

            var uids = new Guid[indexes.Count];
            int i = 0;
            foreach (int index in indexes)
            {
                uids[i++] = _ids[index];
            }

            try
            {
                await using var delete = new NpgsqlCommand("DELETE FROM slimmail.messages WHERE user_name = $1 AND message_uid = ANY($2)", _connection);
                delete.Parameters.Add(new NpgsqlParameter { Value = _user });
                delete.Parameters.Add(new NpgsqlParameter { Value = uids });
                await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (NpgsqlException e)
            {
                throw new IOException("The PostgreSQL mailbox store cannot be reached: " + e.Message, e);
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                // A pooled connection outlives the session, so the maildrop lock is released by hand.
                await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock($1, hashtext($2))", _connection);
                unlock.Parameters.Add(new NpgsqlParameter { Value = MaildropLockClass });
                unlock.Parameters.Add(new NpgsqlParameter { Value = _user });
                await unlock.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                // The connection is gone, and the lock with it.
            }

            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "PostgreSQL: applied {Count} schema migration(s)")]
    private static partial void LogMigrated(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{QueueId}: PostgreSQL delivery failed, the client will retry: {Error}")]
    private static partial void LogStoreFailed(ILogger logger, string queueId, string error);
}
