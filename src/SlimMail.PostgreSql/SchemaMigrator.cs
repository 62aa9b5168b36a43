using System.Globalization;
using System.Reflection;
using Npgsql;

namespace SlimMail.PostgreSql;

/// <summary>
/// Creates and migrates the <c>slimmail</c> schema: each embedded <c>Migrations/NNN_name.sql</c> runs once,
/// in order, in its own transaction, recorded in <c>slimmail.schema_migrations</c>. An advisory lock keeps two
/// servers starting at once from running the same migration twice.
/// </summary>
internal static class SchemaMigrator
{
    private const long MigrationLock = 0x5L << 32 | 0x11_3A11;
    private const string ResourcePrefix = "SlimMail.PostgreSql.Migrations.";

    /// <summary>The migrations shipped with this version, by version number.</summary>
    public static IReadOnlyList<(int Version, string Name, string Sql)> Migrations { get; } = LoadMigrations();

    /// <summary>Applies the migrations the database does not have yet; returns how many ran.</summary>
    public static async Task<int> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await using NpgsqlConnection connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, null, "SELECT pg_advisory_lock(" + MigrationLock.ToString(CultureInfo.InvariantCulture) + ")", cancellationToken).ConfigureAwait(false);
        try
        {
            await ExecuteAsync(connection, null, """
                CREATE SCHEMA IF NOT EXISTS slimmail;
                CREATE TABLE IF NOT EXISTS slimmail.schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now());
                """, cancellationToken).ConfigureAwait(false);
            var applied = new HashSet<int>();
            await using (var query = new NpgsqlCommand("SELECT version FROM slimmail.schema_migrations", connection))
            await using (NpgsqlDataReader reader = await query.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    applied.Add(reader.GetInt32(0));
                }
            }

            int count = 0;
            foreach ((int version, string name, string sql) in Migrations)
            {
                if (applied.Contains(version))
                {
                    continue;
                }

                await using NpgsqlTransaction transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, transaction, sql, cancellationToken).ConfigureAwait(false);
                await using (var record = new NpgsqlCommand("INSERT INTO slimmail.schema_migrations (version, name) VALUES ($1, $2)", connection, transaction))
                {
                    record.Parameters.Add(new NpgsqlParameter { Value = version });
                    record.Parameters.Add(new NpgsqlParameter { Value = name });
                    await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                count++;
            }

            return count;
        }
        finally
        {
            await ExecuteAsync(connection, null, "SELECT pg_advisory_unlock(" + MigrationLock.ToString(CultureInfo.InvariantCulture) + ")", CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static List<(int, string, string)> LoadMigrations()
    {
        Assembly assembly = typeof(SchemaMigrator).Assembly;
        var migrations = new List<(int, string, string)>();
        foreach (string resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            {
                continue;
            }

            string name = resource[ResourcePrefix.Length..^".sql".Length];
            int version = int.Parse(name.AsSpan(0, name.IndexOf('_', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
            using Stream stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            migrations.Add((version, name, reader.ReadToEnd()));
        }

        migrations.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return migrations;
    }
}
