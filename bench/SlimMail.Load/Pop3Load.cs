using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SlimMail.Load;

/// <summary>
/// Retrieves a whole maildrop per session, as a mail client does: USER/PASS, STAT, LIST, UIDL, then RETR
/// of every message one at a time (no pipelining, no DELE, so runs repeat), QUIT. The clock runs from
/// the moment every session has logged in: a server's password hashing (deliberately slow) is not retrieval.
/// </summary>
internal static class Pop3Load
{
    public static async Task<LoadResult> RunAsync(IPEndPoint endpoint, LoadOptions options)
    {
        var sessions = new Task<LoadResult>[options.Sessions];
        var loggedIn = new Barrier(options.Sessions + 1);
        for (int i = 0; i < sessions.Length; i++)
        {
            string user = string.Format(CultureInfo.InvariantCulture, options.User, i + 1);
            sessions[i] = Task.Factory.StartNew(() => RetrieveAllAsync(endpoint, user, options.Password, loggedIn), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        }

        loggedIn.SignalAndWait(TimeSpan.FromMinutes(1));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long messages = 0, bytes = 0;
        foreach (LoadResult result in await Task.WhenAll(sessions).ConfigureAwait(false))
        {
            messages += result.Messages;
            bytes += result.Bytes;
        }

        return new LoadResult(messages, bytes, clock.Elapsed.TotalSeconds);
    }

    private static async Task<LoadResult> RetrieveAllAsync(IPEndPoint endpoint, string user, string password, Barrier loggedIn)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint).ConfigureAwait(false);
        using var connection = new ReplyReader(socket);
        await connection.ExpectOkAsync("greeting").ConfigureAwait(false);
        await Command(connection, $"USER {user}").ConfigureAwait(false);
        await Command(connection, $"PASS {password}").ConfigureAwait(false);
        loggedIn.SignalAndWait(TimeSpan.FromMinutes(1));
        string stat = await Command(connection, "STAT").ConfigureAwait(false);
        int count = int.Parse(stat.Split(' ')[1], CultureInfo.InvariantCulture);
        await Command(connection, "LIST").ConfigureAwait(false);
        await connection.SkipDotBodyAsync().ConfigureAwait(false);
        await Command(connection, "UIDL").ConfigureAwait(false);
        await connection.SkipDotBodyAsync().ConfigureAwait(false);
        long bytes = 0;
        byte[] retr = new byte[32];
        for (int i = 1; i <= count; i++)
        {
            int n = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"RETR {i}\r\n"), retr);
            await connection.SendAsync(retr.AsMemory(0, n)).ConfigureAwait(false);
            await connection.ExpectOkAsync("RETR").ConfigureAwait(false);
            bytes += await connection.SkipDotBodyAsync().ConfigureAwait(false);
        }

        await Command(connection, "QUIT").ConfigureAwait(false);
        return new LoadResult(count, bytes);
    }

    private static async Task<string> Command(ReplyReader connection, string command)
    {
        await connection.SendAsync(Encoding.ASCII.GetBytes(command + "\r\n")).ConfigureAwait(false);
        return await connection.ExpectOkAsync(command.Split(' ')[0]).ConfigureAwait(false);
    }
}
