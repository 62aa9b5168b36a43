using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using System.Buffers;

namespace SlimMail.Relay;

/// <summary>
/// A small SMTP client (RFC 5321) for one connection: greeting, EHLO with HELO fallback, optional
/// STARTTLS and AUTH PLAIN, MAIL, RCPT with a result per recipient, DATA with dot-stuffing, QUIT.
/// Every step has a timeout. Used by <c>slimmail sendmail</c> and by outbound delivery.
/// </summary>
public sealed class SmtpClientConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly TimeSpan _timeout;
    private Stream _stream;
    private readonly byte[] _buffer = new byte[4096];
    private int _start;
    private int _end;

    private SmtpClientConnection(TcpClient tcp, TimeSpan timeout)
    {
        _tcp = tcp;
        _timeout = timeout;
        _stream = tcp.GetStream();
    }

    /// <summary>When the connection was opened (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    public long OpenedAt { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// True when nothing has arrived since the last reply and the server has not closed the connection: what a
    /// connection must be to carry another transaction. A server that gave up on an idle client says 421 and
    /// closes; either makes the socket readable.
    /// </summary>
    public bool LooksIdle
    {
        get
        {
            try
            {
                return _start == _end && _tcp.Connected && !_tcp.Client.Poll(0, SelectMode.SelectRead);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return false;
            }
        }
    }

    /// <summary>The extensions the server announced in its EHLO reply (upper case keywords → parameters).</summary>
    public IReadOnlyDictionary<string, string> Extensions { get; private set; } = new Dictionary<string, string>();

    /// <summary>Connects and reads the greeting; throws <see cref="SmtpClientException"/> when the server refuses.</summary>
    public static Task<SmtpClientConnection> ConnectAsync(string host, int port, TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ConnectAsync(host, port, timeout, implicitTls: false, validateCertificate: true, cancellationToken);

    /// <summary>
    /// Connects (with TLS from the first byte when <paramref name="implicitTls"/>, as on port 465) and reads
    /// the greeting; throws <see cref="SmtpClientException"/> when the server refuses.
    /// </summary>
    public static async Task<SmtpClientConnection> ConnectAsync(string host, int port, TimeSpan timeout, bool implicitTls, bool validateCertificate,
        CancellationToken cancellationToken = default)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            await tcp.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }

        var connection = new SmtpClientConnection(tcp, timeout);
        if (implicitTls)
        {
            try
            {
                await connection.NegotiateTlsAsync(host, validateCertificate, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }

        SmtpClientReply greeting = await connection.ReadReplyAsync(cancellationToken).ConfigureAwait(false);
        if (greeting.Code != 220)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw new SmtpClientException(greeting);
        }

        return connection;
    }

    /// <summary>EHLO, falling back to HELO when the server does not know EHLO.</summary>
    public async Task HelloAsync(string name, CancellationToken cancellationToken = default)
    {
        SmtpClientReply reply = await CommandAsync("EHLO " + name, cancellationToken).ConfigureAwait(false);
        if (reply.Code == 250)
        {
            var extensions = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (string line in reply.Lines.Skip(1))
            {
                int space = line.IndexOf(' ', StringComparison.Ordinal);
                extensions[space < 0 ? line : line[..space]] = space < 0 ? "" : line[(space + 1)..];
            }

            Extensions = extensions;
            return;
        }

        Extensions = new Dictionary<string, string>();
        Expect(await CommandAsync("HELO " + name, cancellationToken).ConfigureAwait(false), 250);
    }

    /// <summary>STARTTLS (RFC 3207) and a new EHLO. <paramref name="validate"/> false accepts any certificate (opportunistic TLS).</summary>
    public async Task StartTlsAsync(string host, string helloName, bool validate, CancellationToken cancellationToken = default)
    {
        Expect(await CommandAsync("STARTTLS", cancellationToken).ConfigureAwait(false), 220);
        await NegotiateTlsAsync(host, validate, cancellationToken).ConfigureAwait(false);
        await HelloAsync(helloName, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>True once TLS is active on the connection.</summary>
    public bool IsSecure => _stream is SslStream;

    private async Task NegotiateTlsAsync(string host, bool validate, CancellationToken cancellationToken)
    {
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions { TargetHost = host };
        if (!validate)
        {
#pragma warning disable CA5359 // Opportunistic TLS between MTAs does not verify (RFC 7435); callers choose.
            options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
#pragma warning restore CA5359
        }

        using var cts = Timeout(cancellationToken);
        await tls.AuthenticateAsClientAsync(options, cts.Token).ConfigureAwait(false);
        _stream = tls;
        _start = _end = 0;
    }

    /// <summary>AUTH PLAIN (RFC 4954).</summary>
    public async Task AuthenticateAsync(string user, string password, CancellationToken cancellationToken = default)
    {
        string response = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0" + user + "\0" + password));
        Expect(await CommandAsync("AUTH PLAIN " + response, cancellationToken).ConfigureAwait(false), 235);
    }

    /// <summary>MAIL FROM; throws on refusal.</summary>
    public Task MailAsync(string sender, CancellationToken cancellationToken = default) => MailAsync(sender, 0, false, cancellationToken);

    /// <summary>
    /// MAIL FROM with <c>SIZE=</c> (RFC 1870) when the server offers it, <c>BODY=8BITMIME</c> and <c>SMTPUTF8</c>
    /// (when <paramref name="smtpUtf8"/> or the sender needs it, and the server offers it); throws on refusal.
    /// </summary>
    public async Task MailAsync(string sender, long size, bool smtpUtf8, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        string parameters = Extensions.ContainsKey("8BITMIME") ? " BODY=8BITMIME" : "";
        if (Extensions.ContainsKey("SMTPUTF8") && (smtpUtf8 || !Ascii.IsValid(sender)))
        {
            parameters += " SMTPUTF8";
        }

        if (size > 0 && Extensions.ContainsKey("SIZE"))
        {
            parameters += " SIZE=" + size.ToString(CultureInfo.InvariantCulture);
        }

        Expect(await CommandAsync($"MAIL FROM:<{sender}>{parameters}", cancellationToken).ConfigureAwait(false), 250);
    }

    /// <summary>
    /// RCPT TO for each recipient, one reply each, in order. With <c>PIPELINING</c> (RFC 2920) all commands
    /// go out in one write and the replies are read afterwards.
    /// </summary>
    public async Task<IReadOnlyList<SmtpClientReply>> RecipientsAsync(IReadOnlyList<string> recipients, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        var replies = new List<SmtpClientReply>(recipients.Count);
        if (!Extensions.ContainsKey("PIPELINING"))
        {
            foreach (string recipient in recipients)
            {
                replies.Add(await RecipientAsync(recipient, cancellationToken).ConfigureAwait(false));
            }

            return replies;
        }

        var batch = new StringBuilder();
        foreach (string recipient in recipients)
        {
            batch.Append("RCPT TO:<").Append(recipient).Append(">\r\n");
        }

        using (var cts = Timeout(cancellationToken))
        {
            await _stream.WriteAsync(Encoding.UTF8.GetBytes(batch.ToString()), cts.Token).ConfigureAwait(false);
        }

        foreach (string _ in recipients)
        {
            replies.Add(await ReadReplyAsync(cancellationToken).ConfigureAwait(false));
        }

        return replies;
    }

    /// <summary>RCPT TO; returns the server's reply for this recipient (accepted or not).</summary>
    public Task<SmtpClientReply> RecipientAsync(string recipient, CancellationToken cancellationToken = default) =>
        CommandAsync($"RCPT TO:<{recipient}>", cancellationToken);

    /// <summary>DATA: sends <paramref name="message"/> (CRLF line endings) dot-stuffed and returns the final reply.</summary>
    public async Task<SmtpClientReply> DataAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken = default)
    {
        SmtpClientReply start = await CommandAsync("DATA", cancellationToken).ConfigureAwait(false);
        if (start.Code != 354)
        {
            return start;
        }

        using var cts = Timeout(cancellationToken);
        await _stream.WriteAsync(DotStuff(message.Span), cts.Token).ConfigureAwait(false);
        await _stream.WriteAsync("\r\n.\r\n"u8.ToArray().AsMemory(message.Span.EndsWith("\r\n"u8) ? 2 : 0), cts.Token).ConfigureAwait(false);
        // RFC 5321 §4.5.3.2.6: wait up to 10 minutes for the reply to the end of data.
        return await ReadReplyAsync(cancellationToken, TimeSpan.FromMinutes(10) > _timeout ? TimeSpan.FromMinutes(10) : _timeout).ConfigureAwait(false);
    }

    /// <summary>QUIT, ignoring errors: the message is already accepted or refused.</summary>
    public async Task QuitAsync()
    {
        try
        {
            await CommandAsync("QUIT", CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SmtpClientException or OperationCanceledException)
        {
        }
    }

    /// <summary>Sends one command line and reads its reply.</summary>
    public async Task<SmtpClientReply> CommandAsync(string line, CancellationToken cancellationToken = default)
    {
        using var cts = Timeout(cancellationToken);
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\r\n"), cts.Token).ConfigureAwait(false);
        return await ReadReplyAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync().ConfigureAwait(false);
        _tcp.Dispose();
    }

    /// <summary>A line starting with '.' gets another '.' (RFC 5321 §4.5.2).</summary>
    internal static byte[] DotStuff(ReadOnlySpan<byte> message)
    {
        var output = new MemoryStream(message.Length + 64);
        bool lineStart = true;
        foreach (byte b in message)
        {
            if (lineStart && b == (byte)'.')
            {
                output.WriteByte((byte)'.');
            }

            output.WriteByte(b);
            lineStart = b == (byte)'\n';
        }

        return output.ToArray();
    }

    private static void Expect(SmtpClientReply reply, int code)
    {
        if (reply.Code != code)
        {
            throw new SmtpClientException(reply);
        }
    }

    private CancellationTokenSource Timeout(CancellationToken cancellationToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(_timeout);
        return cts;
    }

    private async Task<SmtpClientReply> ReadReplyAsync(CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        var lines = new List<string>();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout ?? _timeout);
        while (true)
        {
            string line = await ReadLineAsync(cts.Token).ConfigureAwait(false);
            if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out int code))
            {
                throw new IOException("malformed SMTP reply: " + line);
            }

            lines.Add(line.Length > 4 ? line[4..] : "");
            if (line.Length == 3 || line[3] != '-')
            {
                return new SmtpClientReply(code, lines);
            }
        }
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        while (true)
        {
            if (_start == _end)
            {
                _start = 0;
                _end = await _stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                if (_end == 0)
                {
                    throw new IOException("the server closed the connection");
                }
            }

            int lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            int stop = lf < 0 ? _end : lf;
            line.AddRange(_buffer.AsSpan(_start, stop - _start));
            _start = lf < 0 ? _end : lf + 1;
            if (lf >= 0)
            {
                return Encoding.UTF8.GetString(line.ToArray()).TrimEnd('\r');
            }

            if (line.Count > 4096)
            {
                throw new IOException("SMTP reply line too long");
            }
        }
    }
}

/// <summary>A reply from an SMTP server.</summary>
/// <param name="Code">The three-digit code.</param>
/// <param name="Lines">The text of each line (without the code).</param>
public sealed record SmtpClientReply(int Code, IReadOnlyList<string> Lines)
{
    /// <summary>2xx or 3xx.</summary>
    public bool IsPositive => Code < 400;

    /// <summary>4xx: try again later.</summary>
    public bool IsTransient => Code is >= 400 and < 500;

    /// <inheritdoc />
    public override string ToString() => Code.ToString(CultureInfo.InvariantCulture) + " " + string.Join(" / ", Lines);
}

/// <summary>A server refused a step of the dialogue.</summary>
public sealed class SmtpClientException : Exception
{
    /// <summary>Wraps <paramref name="reply"/>.</summary>
    public SmtpClientException(SmtpClientReply reply)
        : base(reply?.ToString())
    {
        Reply = reply!;
    }

    /// <summary>Creates an exception without a reply.</summary>
    public SmtpClientException()
        : this(new SmtpClientReply(451, ["no reply"]))
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public SmtpClientException(string message)
        : base(message)
    {
        Reply = new SmtpClientReply(451, [message]);
    }

    /// <summary>Creates an exception with a message and a cause.</summary>
    public SmtpClientException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reply = new SmtpClientReply(451, [message]);
    }

    /// <summary>The refusal.</summary>
    public SmtpClientReply Reply { get; }
}
