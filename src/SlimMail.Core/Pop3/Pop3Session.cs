using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Transport;

namespace SlimMail.Pop3;

/// <summary>
/// One POP3 dialogue (RFC 1939, with RFC 2449 CAPA and response codes, RFC 2595 STLS and RFC 5034 SASL
/// PLAIN): AUTHORIZATION, then TRANSACTION on a locked mailbox, then UPDATE at QUIT, where deletions
/// happen. A connection that drops deletes nothing.
/// </summary>
public sealed partial class Pop3Session
{
    private readonly TransportConnection _connection;
    private readonly Pop3ServerOptions _options;
    private readonly IMailboxStore _store;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private readonly CancellationTokenSource _timer;
    private readonly LineReader _lines = new(1024);
    private readonly HashSet<int> _deleted = [];
    private readonly IPEndPoint _remote;

    private PipeReader _input;
    private readonly ReplyWriter _replies;
    private string? _user;
    private IMailboxSession? _mailbox;
    private int _errors;

    /// <summary>Creates a session for the client at <paramref name="remote"/> (from the PROXY header when there is one).</summary>
    public Pop3Session(TransportConnection connection, IPEndPoint remote, Pop3ServerOptions options, IMailboxStore store, ILogger logger,
        CancellationToken stopping)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        _connection = connection;
        _options = options;
        _store = store;
        _logger = logger;
        _stopping = stopping;
        _timer = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        _input = connection.Input;
        _replies = new ReplyWriter(connection.Output);
        _remote = remote;
    }

    private bool Authenticated => _mailbox is not null;

    // Credentials only inside TLS, except from loopback (RequireTlsForAuth).
    private bool CredentialsAllowed => _options.Authenticator is not null
        && (_connection.IsSecure || !_options.RequireTlsForAuth || IPAddress.IsLoopback(_remote.Address));

    /// <summary>Runs the dialogue until QUIT, a drop, a timeout or shutdown.</summary>
    public async Task RunAsync()
    {
        using IDisposable? scope = _logger.BeginScope(new SessionLogScope("pop3", _remote));
        LogConnected(_logger, _remote);
        SlimMailMetrics.Connections.Add(1, new KeyValuePair<string, object?>("protocol", "pop3"));
        SlimMailMetrics.Sessions.Add(1, new KeyValuePair<string, object?>("protocol", "pop3"), new KeyValuePair<string, object?>("role", "Pop3"));
        if (_connection.IsSecure)
        {
            SlimMailMetrics.RecordTls("pop3", _connection.TlsVersion);
        }

        try
        {
            Ok("SlimMail POP3 ready");
            while (await NextCommandAsync().ConfigureAwait(false))
            {
            }

            // Unlock before the last reply goes out, so a client that reconnects at once finds the mailbox free.
            await ReleaseMailboxAsync().ConfigureAwait(false);
            await FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            // Without QUIT there was no UPDATE state: nothing is deleted (RFC 1939 §6).
            await ReleaseMailboxAsync().ConfigureAwait(false);
            _timer.Dispose();
        }
    }

    private async ValueTask ReleaseMailboxAsync()
    {
        IMailboxSession? mailbox = _mailbox;
        _mailbox = null;
        if (mailbox is not null)
        {
            await mailbox.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask<bool> NextCommandAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            Err("[SYS/TEMP] Server shutting down");
            return false;
        }

        _timer.CancelAfter(_options.CommandTimeout);
        LineReadStatus status;
        try
        {
            status = await _lines.ReadAsync(_input, FlushAsync, _timer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_timer.IsCancellationRequested)
        {
            Err(_stopping.IsCancellationRequested ? "[SYS/TEMP] Server shutting down" : "Autologout; idle for too long");
            return false;
        }

        _timer.CancelAfter(Timeout.Infinite);
        if (status == LineReadStatus.Closed)
        {
            return false;
        }

        if (status == LineReadStatus.TooLong)
        {
            return Error("Line too long");
        }

        string line = Encoding.UTF8.GetString(_lines.Line);
        int space = line.IndexOf(' ', StringComparison.Ordinal);
        string verb = (space < 0 ? line : line[..space]).ToUpperInvariant();
        string argument = space < 0 ? "" : line[(space + 1)..];
        return Authenticated ? await TransactionAsync(verb, argument).ConfigureAwait(false) : await AuthorizationAsync(verb, argument).ConfigureAwait(false);
    }

    // ---- AUTHORIZATION state -----------------------------------------------------------------

    private async ValueTask<bool> AuthorizationAsync(string verb, string argument)
    {
        switch (verb)
        {
            case "CAPA":
                return Capabilities();
            case "STLS":
                return await StartTlsAsync().ConfigureAwait(false);
            case "USER":
                if (!CredentialsAllowed)
                {
                    return Err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
                }

                _user = argument;
                return argument.Length == 0 ? Error("Syntax: USER name") : Ok("Send your password");
            case "PASS":
                if (_user is null)
                {
                    return Error("USER first");
                }

                string user = _user;
                _user = null;
                return await LoginAsync(user, argument, "USER").ConfigureAwait(false);
            case "AUTH":
                return await SaslAsync(argument).ConfigureAwait(false);
            case "APOP":
                return Err("[AUTH] APOP is not supported");
            case "QUIT":
                Ok("SlimMail POP3 signing off");
                return false;
            case "NOOP" or "STAT" or "LIST" or "RETR" or "DELE" or "RSET" or "TOP" or "UIDL":
                return Error("Not authenticated");
            default:
                return Error("Unknown command");
        }
    }

    private bool Capabilities()
    {
        var text = new StringBuilder("+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
        if (!Authenticated && CredentialsAllowed)
        {
            text.Append("USER\r\nSASL PLAIN\r\n");
        }

        if (!Authenticated && _options.Tls is not null && !_connection.IsSecure)
        {
            text.Append("STLS\r\n");
        }

        text.Append("IMPLEMENTATION SlimMail\r\n.\r\n");
        WriteRaw(Encoding.ASCII.GetBytes(text.ToString()));
        return true;
    }

    private async ValueTask<bool> StartTlsAsync()
    {
        if (_options.Tls is null || _connection.IsSecure)
        {
            return Error(_connection.IsSecure ? "TLS already active" : "STLS not available");
        }

        Ok("Begin TLS negotiation");
        _timer.CancelAfter(_options.CommandTimeout);
        try
        {
            await FlushAsync(_timer.Token).ConfigureAwait(false);
            // Anything the client pipelined in plaintext is dropped with the old reader (RFC 2595 §4).
            await _connection.StartTlsAsync(_options.Tls(), _timer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
        {
            LogTlsFailed(_logger, _remote, e.Message);
            return false;
        }

        _input = _connection.Input;
        _replies.Output = _connection.Output;
        SlimMailMetrics.RecordTls("pop3", _connection.TlsVersion);
        _user = null;
        return true;
    }

    private async ValueTask<bool> SaslAsync(string argument)
    {
        if (argument.Length == 0)
        {
            // RFC 5034 §4: AUTH with no argument lists the mechanisms.
            WriteRaw(CredentialsAllowed ? "+OK\r\nPLAIN\r\n.\r\n"u8 : "+OK\r\n.\r\n"u8);
            return true;
        }

        string[] parts = argument.Split(' ', 2);
        if (!parts[0].Equals("PLAIN", StringComparison.OrdinalIgnoreCase))
        {
            return Error("Unsupported mechanism");
        }

        if (!CredentialsAllowed)
        {
            return Err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
        }

        string response;
        if (parts.Length == 2)
        {
            response = parts[1] == "=" ? "" : parts[1];
        }
        else
        {
            WriteRaw("+ \r\n"u8);
            _timer.CancelAfter(_options.CommandTimeout);
            if (await _lines.ReadAsync(_input, FlushAsync, _timer.Token).ConfigureAwait(false) != LineReadStatus.Line)
            {
                return false;
            }

            _timer.CancelAfter(Timeout.Infinite);
            response = Encoding.ASCII.GetString(_lines.Line);
        }

        if (response == "*")
        {
            return Err("Authentication cancelled");
        }

        byte[] decoded;
        try
        {
            decoded = Convert.FromBase64String(response);
        }
        catch (FormatException)
        {
            return Err("Cannot decode response");
        }

        if (!Sasl.TryParsePlain(decoded, out string? user, out string? password))
        {
            return await LoginFailedAsync(user ?? "", "PLAIN").ConfigureAwait(false);
        }

        return await LoginAsync(user!, password!, "PLAIN").ConfigureAwait(false);
    }

    private async ValueTask<bool> LoginAsync(string user, string password, string mechanism)
    {
        if (!CredentialsAllowed)
        {
            return Err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
        }

        if (_options.AuthThrottle.IsBlocked(_remote.Address))
        {
            LogAuthBlocked(_logger, _remote);
            return Err("[AUTH] Too many authentication failures; try again later");
        }

        AuthResult result = await _options.Authenticator!.AuthenticateAsync(user, password, _timer.Token).ConfigureAwait(false);
        if (result.Status == AuthStatus.TemporaryFailure)
        {
            return Err("[SYS/TEMP] Authentication is temporarily unavailable");
        }

        if (result.Status != AuthStatus.Success)
        {
            return await LoginFailedAsync(user, mechanism).ConfigureAwait(false);
        }

        IMailboxSession? mailbox;
        try
        {
            mailbox = await _store.OpenAsync(result.User!, _timer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogMailboxError(_logger, Sasl.Printable(result.User!), e);
            return Err("[SYS/TEMP] Mailbox unavailable");
        }

        if (mailbox is null)
        {
            return Err("[IN-USE] Mailbox is locked by another session");
        }

        _mailbox = mailbox;
        LogLoggedIn(_logger, _remote, Sasl.Printable(result.User!), mailbox.Messages.Count);
        return Ok(string.Create(CultureInfo.InvariantCulture, $"Logged in: {mailbox.Messages.Count} messages"));
    }

    private async ValueTask<bool> LoginFailedAsync(string user, string mechanism)
    {
        LogAuthFailed(_logger, _remote, mechanism, Sasl.Printable(user));
        SlimMailMetrics.AuthFailures.Add(1, new KeyValuePair<string, object?>("protocol", "pop3"));
        await Task.Delay(_options.AuthThrottle.RecordFailure(_remote.Address)).ConfigureAwait(false);
        return Err("[AUTH] Authentication failed");
    }

    // ---- TRANSACTION state -------------------------------------------------------------------

    private async ValueTask<bool> TransactionAsync(string verb, string argument)
    {
        IReadOnlyList<MailboxMessage> messages = _mailbox!.Messages;
        switch (verb)
        {
            case "STAT":
                long total = 0;
                int count = 0;
                for (int i = 0; i < messages.Count; i++)
                {
                    if (!_deleted.Contains(i))
                    {
                        count++;
                        total += messages[i].Size;
                    }
                }

                return Ok(string.Create(CultureInfo.InvariantCulture, $"{count} {total}"));
            case "LIST":
                return List(argument, static m => m.Size.ToString(CultureInfo.InvariantCulture));
            case "UIDL":
                return List(argument, static m => m.UniqueId);
            case "RETR":
                return TryMessage(argument, out int retr) ? await SendAsync(retr, null).ConfigureAwait(false) : NoSuchMessage();
            case "TOP":
                string[] topArgs = argument.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (topArgs.Length != 2 || !int.TryParse(topArgs[1], NumberStyles.None, CultureInfo.InvariantCulture, out int lines))
                {
                    return Error("Syntax: TOP msg n");
                }

                return TryMessage(topArgs[0], out int top) ? await SendAsync(top, lines).ConfigureAwait(false) : NoSuchMessage();
            case "DELE":
                if (!TryMessage(argument, out int dele))
                {
                    return NoSuchMessage();
                }

                _deleted.Add(dele);
                return Ok(string.Create(CultureInfo.InvariantCulture, $"Message {dele + 1} deleted"));
            case "RSET":
                _deleted.Clear();
                return Ok(string.Create(CultureInfo.InvariantCulture, $"{messages.Count} messages"));
            case "NOOP":
                return Ok("");
            case "CAPA":
                return Capabilities();
            case "QUIT":
                return await UpdateAsync().ConfigureAwait(false);
            case "USER" or "PASS" or "AUTH" or "APOP" or "STLS":
                return Error("Already authenticated");
            default:
                return Error("Unknown command");
        }
    }

    private bool List(string argument, Func<MailboxMessage, string> describe)
    {
        IReadOnlyList<MailboxMessage> messages = _mailbox!.Messages;
        if (argument.Length > 0)
        {
            return TryMessage(argument, out int index)
                ? Ok(string.Create(CultureInfo.InvariantCulture, $"{index + 1} {describe(messages[index])}"))
                : NoSuchMessage();
        }

        var text = new StringBuilder("+OK\r\n");
        for (int i = 0; i < messages.Count; i++)
        {
            if (!_deleted.Contains(i))
            {
                text.Append(i + 1).Append(' ').Append(describe(messages[i])).Append("\r\n");
            }
        }

        text.Append(".\r\n");
        WriteRaw(Encoding.ASCII.GetBytes(text.ToString()));
        return true;
    }

    private async ValueTask<bool> SendAsync(int index, int? bodyLines)
    {
        Stream message;
        try
        {
            message = await _mailbox!.OpenReadAsync(index, _timer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogMailboxError(_logger, "-", e);
            return Err("[SYS/TEMP] Message unavailable");
        }

        await using (message.ConfigureAwait(false))
        {
            byte[] status = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"+OK {_mailbox.Messages[index].Size} octets\r\n"));
            _timer.CancelAfter(_options.CommandTimeout);
            await Pop3MessageWriter.WriteAsync(message, status, _replies.Output, bodyLines, _timer.Token).ConfigureAwait(false);
            _timer.CancelAfter(Timeout.Infinite);
        }

        WriteRaw(".\r\n"u8);
        return true;
    }

    private async ValueTask<bool> UpdateAsync()
    {
        try
        {
            await _mailbox!.DeleteAsync(_deleted, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogMailboxError(_logger, "-", e);
            return Err("[SYS/TEMP] Some deleted messages were not removed");
        }

        int left = _mailbox!.Messages.Count - _deleted.Count;
        LogUpdated(_logger, _remote, _deleted.Count, left);
        Ok(string.Create(CultureInfo.InvariantCulture, $"SlimMail POP3 signing off ({left} messages left)"));
        return false;
    }

    private bool TryMessage(string argument, out int index)
    {
        index = -1;
        if (!int.TryParse(argument.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int number)
            || number < 1 || number > _mailbox!.Messages.Count || _deleted.Contains(number - 1))
        {
            return false;
        }

        index = number - 1;
        return true;
    }

    private bool NoSuchMessage() => Err("No such message");

    // ---- replies -----------------------------------------------------------------------------

    private bool Ok(string text)
    {
        WriteRaw(Encoding.UTF8.GetBytes(text.Length == 0 ? "+OK\r\n" : "+OK " + text + "\r\n"));
        return true;
    }

    private bool Err(string text)
    {
        WriteRaw(Encoding.UTF8.GetBytes("-ERR " + text + "\r\n"));
        return true;
    }

    // A protocol error: the tenth one ends the session (a misbehaving or hostile client).
    private bool Error(string text)
    {
        Err(text);
        return ++_errors < _options.MaxErrors;
    }

    private void WriteRaw(ReadOnlySpan<byte> bytes) => _replies.Write(bytes);

    private ValueTask FlushAsync(CancellationToken cancellationToken) => _replies.FlushAsync(cancellationToken);

    [LoggerMessage(Level = LogLevel.Information, Message = "pop3 connect from {Remote}")]
    private static partial void LogConnected(ILogger logger, IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Information, Message = "pop3 {Remote} logged in as {User}: {Count} messages")]
    private static partial void LogLoggedIn(ILogger logger, IPEndPoint remote, string user, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "pop3 {Remote} quit: {Deleted} deleted, {Left} left")]
    private static partial void LogUpdated(ILogger logger, IPEndPoint remote, int deleted, int left);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pop3 authentication failed from {Remote} ({Mechanism}) for user {User}")]
    private static partial void LogAuthFailed(ILogger logger, IPEndPoint remote, string mechanism, string user);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pop3 authentication from {Remote} refused: too many failures")]
    private static partial void LogAuthBlocked(ILogger logger, IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pop3 TLS handshake with {Remote} failed: {Error}")]
    private static partial void LogTlsFailed(ILogger logger, IPEndPoint remote, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "pop3 mailbox of {User} failed")]
    private static partial void LogMailboxError(ILogger logger, string user, Exception exception);
}
