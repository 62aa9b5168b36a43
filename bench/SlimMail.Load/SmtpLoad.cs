using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SlimMail.Load;

/// <summary>
/// Sends messages like smtp-source: SESSIONS concurrent sessions share MESSAGES; each message on a new
/// connection unless -d; with -P the MAIL, RCPT and DATA commands go in one write and their replies are
/// read after it (RFC 2920), then the message and its terminator in one more, so a message costs two round trips.
/// </summary>
internal static class SmtpLoad
{
    public static async Task<LoadResult> RunAsync(IPEndPoint endpoint, LoadOptions options)
    {
        byte[] envelope = Encoding.ASCII.GetBytes($"MAIL FROM:<{options.From}>\r\nRCPT TO:<{options.To}>\r\nDATA\r\n");
        byte[] message = BuildMessage(options);
        int remaining = options.Messages;
        bool TakeOne() => Interlocked.Decrement(ref remaining) >= 0;

        var sessions = new Task[options.Sessions];
        for (int i = 0; i < sessions.Length; i++)
        {
            sessions[i] = Task.Run(async () =>
            {
                while (TakeOne())
                {
                    using var connection = await ConnectAsync(endpoint).ConfigureAwait(false);
                    do
                    {
                        await SendOneAsync(connection, options, envelope, message).ConfigureAwait(false);
                    }
                    while (options.Reuse && TakeOne());

                    await connection.SendAsync("QUIT\r\n"u8.ToArray()).ConfigureAwait(false);
                    await connection.ExpectSmtpAsync(221, "QUIT").ConfigureAwait(false);
                }
            });
        }

        await Task.WhenAll(sessions).ConfigureAwait(false);
        return new LoadResult(options.Messages, (long)options.Messages * message.Length);
    }

    private static async Task<ReplyReader> ConnectAsync(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint).ConfigureAwait(false);
        var connection = new ReplyReader(socket);
        await connection.ExpectSmtpAsync(220, "greeting").ConfigureAwait(false);
        await connection.SendAsync("EHLO load.client.test\r\n"u8.ToArray()).ConfigureAwait(false);
        await connection.ExpectSmtpAsync(250, "EHLO").ConfigureAwait(false);
        return connection;
    }

    private static async Task SendOneAsync(ReplyReader connection, LoadOptions options, byte[] envelope, byte[] message)
    {
        if (options.Pipelining)
        {
            await connection.SendAsync(envelope).ConfigureAwait(false);
        }
        else
        {
            // One command per round trip, as smtp-source does.
            int mail = Array.IndexOf(envelope, (byte)'\n') + 1;
            int rcpt = Array.IndexOf(envelope, (byte)'\n', mail) + 1;
            await connection.SendAsync(envelope.AsMemory(0, mail)).ConfigureAwait(false);
            await connection.ExpectSmtpAsync(250, "MAIL").ConfigureAwait(false);
            await connection.SendAsync(envelope.AsMemory(mail, rcpt - mail)).ConfigureAwait(false);
            await connection.ExpectSmtpAsync(250, "RCPT").ConfigureAwait(false);
            await connection.SendAsync(envelope.AsMemory(rcpt)).ConfigureAwait(false);
            await connection.ExpectSmtpAsync(354, "DATA").ConfigureAwait(false);
            await connection.SendAsync(message).ConfigureAwait(false);
            await connection.ExpectSmtpAsync(250, "end of data").ConfigureAwait(false);
            return;
        }

        await connection.ExpectSmtpAsync(250, "MAIL").ConfigureAwait(false);
        await connection.ExpectSmtpAsync(250, "RCPT").ConfigureAwait(false);
        await connection.ExpectSmtpAsync(354, "DATA").ConfigureAwait(false);
        await connection.SendAsync(message).ConfigureAwait(false);
        await connection.ExpectSmtpAsync(250, "end of data").ConfigureAwait(false);
    }

    // Headers, then 78-character lines up to SIZE bytes, then the terminator.
    private static byte[] BuildMessage(LoadOptions options)
    {
        var text = new StringBuilder($"From: <{options.From}>\r\nTo: <{options.To}>\r\nSubject: load\r\n\r\n");
        while (text.Length < options.Size)
        {
            int n = Math.Min(78, Math.Max(1, options.Size - text.Length - 2));
            text.Append('x', n).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(text.Append(".\r\n").ToString());
    }
}
