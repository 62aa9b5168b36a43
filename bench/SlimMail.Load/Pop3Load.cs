using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SlimMail.Load;

/// <summary>
/// Retrieves a whole maildrop per session, as a mail client does: USER/PASS, STAT, LIST, UIDL, then RETR
/// of every message one at a time (no pipelining, no DELE, so runs repeat), QUIT. Each session is a thread
/// making blocking calls. The clock runs from the moment every session has logged in: a server's password
/// hashing (deliberately slow) is not retrieval.
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
            sessions[i] = Task.Factory.StartNew(() => RetrieveAll(endpoint, user, options.Password, options.LoginOnly, loggedIn), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
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

    private static LoadResult RetrieveAll(IPEndPoint endpoint, string user, string password, bool loginOnly, Barrier loggedIn)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect(endpoint);
        using var connection = new ReplyReader(socket);
        connection.ExpectOk("greeting");
        Command(connection, $"USER {user}");
        Command(connection, $"PASS {password}");
        loggedIn.SignalAndWait(TimeSpan.FromMinutes(1));
        if (loginOnly)
        {
            Command(connection, "QUIT");
            return new LoadResult(0, 0);
        }

        string stat = Command(connection, "STAT");
        int count = int.Parse(stat.Split(' ')[1], CultureInfo.InvariantCulture);
        Command(connection, "LIST");
        connection.SkipDotBody();
        Command(connection, "UIDL");
        connection.SkipDotBody();
        long bytes = 0;
        Span<byte> retr = stackalloc byte[32];
        for (int i = 1; i <= count; i++)
        {
            "RETR "u8.CopyTo(retr);
            i.TryFormat(retr[5..], out int digits, provider: CultureInfo.InvariantCulture);
            "\r\n"u8.CopyTo(retr[(5 + digits)..]);
            connection.Send(retr[..(7 + digits)]);
            connection.ExpectOk("RETR");
            bytes += connection.SkipDotBody();
        }

        Command(connection, "QUIT");
        return new LoadResult(count, bytes);
    }

    private static string Command(ReplyReader connection, string command)
    {
        connection.Send(Encoding.ASCII.GetBytes(command + "\r\n"));
        return connection.ExpectOk(command.Split(' ')[0]);
    }
}
