using System.Globalization;
using Npgsql;

namespace SlimMail.Tests.Harness;

/// <summary>
/// A new, empty database on the test PostgreSQL server named by <c>SLIMMAIL_TEST_POSTGRES</c> (test.sh starts
/// a private one), dropped at the end. The tests fail, not skip, when no server is configured.
/// </summary>
internal sealed class PostgreSqlDatabase : IAsyncDisposable
{
    private readonly string _admin;

    private PostgreSqlDatabase(string admin, string name)
    {
        _admin = admin;
        Name = name;
        ConnectionString = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = false }.ConnectionString;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    public static async Task<PostgreSqlDatabase> CreateAsync()
    {
        string admin = Environment.GetEnvironmentVariable("SLIMMAIL_TEST_POSTGRES")
            ?? throw new InvalidOperationException("SLIMMAIL_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts a PostgreSQL server");
        string name = "slimmail_test_" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await create.ExecuteNonQueryAsync();
        return new PostgreSqlDatabase(admin, name);
    }

    public async Task<List<object?[]>> QueryAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using NpgsqlDataReader reader = await command.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            object?[] row = new object?[reader.FieldCount];
            for (int i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    public async Task<long> CountAsync(string sql) => Convert.ToInt64((await QueryAsync(sql))[0][0], CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        await using var connection = new NpgsqlConnection(_admin);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Name} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }
}
