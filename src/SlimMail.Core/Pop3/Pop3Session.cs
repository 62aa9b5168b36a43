using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Unicode;
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
    // The flush a line read runs before it waits: one delegate for the session, not one per line.
    private readonly Func<CancellationToken, ValueTask> _flushBeforeWait;
    private readonly HashSet<int> _deleted = [];
    private readonly IPEndPoint _remote;
    // Replies with numbers in them (RETR's status line, DELE's) are formatted here, not into strings.
    private readonly byte[] _reply = new byte[128];

    private PipeReader _input;
    private readonly ReplyWriter _replies;
    private string? _user;
    private IMailboxSession? _mailbox;
    private int _errors;
    private int _argumentStart;

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
        _flushBeforeWait = FlushAsync;
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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> NextCommandAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            Err("[SYS/TEMP] Server shutting down");
            return false;
        }

        await _connection.ReturnToSessionThreadAsync().ConfigureAwait(false);
        _timer.CancelAfter(_options.CommandTimeout);
        LineReadStatus status;
        try
        {
            status = await _lines.ReadAsync(_input, _flushBeforeWait, _timer.Token).ConfigureAwait(false);
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

        Pop3Verb verb = Pop3CommandParser.Parse(_lines.Line, out _argumentStart);
        return Authenticated ? await TransactionAsync(verb).ConfigureAwait(false) : await AuthorizationAsync(verb).ConfigureAwait(false);
    }

    // The current command's argument as sent; valid until the next line is read.
    private ReadOnlySpan<byte> Argument => _argumentStart < 0 ? default : _lines.Line[_argumentStart..];

    private string ArgumentText => Encoding.UTF8.GetString(Argument);

    // ---- AUTHORIZATION state -----------------------------------------------------------------

    private async ValueTask<bool> AuthorizationAsync(Pop3Verb verb)
    {
        switch (verb)
        {
            case Pop3Verb.Capa:
                return Capabilities();
            case Pop3Verb.Stls:
                return await StartTlsAsync().ConfigureAwait(false);
            case Pop3Verb.User:
                if (!CredentialsAllowed)
                {
                    return Err("[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS");
                }

                _user = ArgumentText;
                return _user.Length == 0 ? Error("Syntax: USER name") : Ok("Send your password");
            case Pop3Verb.Pass:
                if (_user is null)
                {
                    return Error("USER first");
                }

                string user = _user;
                _user = null;
                return await LoginAsync(user, ArgumentText, "USER").ConfigureAwait(false);
            case Pop3Verb.Auth:
                return await SaslAsync(ArgumentText).ConfigureAwait(false);
            case Pop3Verb.Apop:
                return Err("[AUTH] APOP is not supported");
            case Pop3Verb.Quit:
                Ok("SlimMail POP3 signing off");
                return false;
            case Pop3Verb.Noop or Pop3Verb.Stat or Pop3Verb.List or Pop3Verb.Retr or Pop3Verb.Dele or Pop3Verb.Rset or Pop3Verb.Top
                or Pop3Verb.Uidl:
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
            if (await _lines.ReadAsync(_input, _flushBeforeWait, _timer.Token).ConfigureAwait(false) != LineReadStatus.Line)
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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> TransactionAsync(Pop3Verb verb)
    {
        IReadOnlyList<MailboxMessage> messages = _mailbox!.Messages;
        switch (verb)
        {
            case Pop3Verb.Stat:
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
            case Pop3Verb.List:
                return List(uniqueIds: false);
            case Pop3Verb.Uidl:
                return List(uniqueIds: true);
            case Pop3Verb.Retr:
                return TryMessage(Argument, out int retr) ? await SendAsync(retr, null).ConfigureAwait(false) : NoSuchMessage();
            case Pop3Verb.Top:
                if (!TrySplitTopArguments(Argument, out ReadOnlySpan<byte> message, out int lines))
                {
                    return Error("Syntax: TOP msg n");
                }

                return TryMessage(message, out int top) ? await SendAsync(top, lines).ConfigureAwait(false) : NoSuchMessage();
            case Pop3Verb.Dele:
                if (!TryMessage(Argument, out int dele))
                {
                    return NoSuchMessage();
                }

                _deleted.Add(dele);
                Utf8.TryWrite(_reply, CultureInfo.InvariantCulture, $"+OK Message {dele + 1} deleted\r\n", out int written);
                WriteRaw(_reply.AsSpan(0, written));
                return true;
            case Pop3Verb.Rset:
                _deleted.Clear();
                return Ok(string.Create(CultureInfo.InvariantCulture, $"{messages.Count} messages"));
            case Pop3Verb.Noop:
                return Ok("");
            case Pop3Verb.Capa:
                return Capabilities();
            case Pop3Verb.Quit:
                return await UpdateAsync().ConfigureAwait(false);
            case Pop3Verb.User or Pop3Verb.Pass or Pop3Verb.Auth or Pop3Verb.Apop or Pop3Verb.Stls:
                return Error("Already authenticated");
            default:
                return Error("Unknown command");
        }
    }

    // LIST or UIDL: of one message (some clients ask message by message), or of all.
    private bool List(bool uniqueIds)
    {
        IReadOnlyList<MailboxMessage> messages = _mailbox!.Messages;
        if (!Argument.IsEmpty)
        {
            if (!TryMessage(Argument, out int index))
            {
                return NoSuchMessage();
            }

            int written;
            if (uniqueIds)
            {
                // A store's identifiers should be at most 70 characters (RFC 1939 §7), but one that is not still gets its answer.
                if (!Utf8.TryWrite(_reply, CultureInfo.InvariantCulture, $"+OK {index + 1} {messages[index].UniqueId}\r\n", out written))
                {
                    return Ok(string.Create(CultureInfo.InvariantCulture, $"{index + 1} {messages[index].UniqueId}"));
                }
            }
            else
            {
                Utf8.TryWrite(_reply, CultureInfo.InvariantCulture, $"+OK {index + 1} {messages[index].Size}\r\n", out written);
            }

            WriteRaw(_reply.AsSpan(0, written));
            return true;
        }

        var text = new StringBuilder("+OK\r\n");
        for (int i = 0; i < messages.Count; i++)
        {
            if (!_deleted.Contains(i))
            {
                text.Append(i + 1).Append(' ');
                if (uniqueIds)
                {
                    text.Append(messages[i].UniqueId);
                }
                else
                {
                    text.Append(messages[i].Size);
                }

                text.Append("\r\n");
            }
        }

        text.Append(".\r\n");
        WriteRaw(Encoding.ASCII.GetBytes(text.ToString()));
        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
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
            Utf8.TryWrite(_reply, CultureInfo.InvariantCulture, $"+OK {_mailbox.Messages[index].Size} octets\r\n", out int written);
            _timer.CancelAfter(_options.CommandTimeout);
            await Pop3MessageWriter.WriteAsync(message, _reply.AsMemory(0, written), _replies.Output, bodyLines, _timer.Token).ConfigureAwait(false);
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

    // TOP's "msg n": two numbers separated by spaces, nothing else.
    private static bool TrySplitTopArguments(ReadOnlySpan<byte> argument, out ReadOnlySpan<byte> message, out int lines)
    {
        argument = argument.Trim((byte)' ');
        int space = argument.IndexOf((byte)' ');
        message = space < 0 ? default : argument[..space];
        lines = 0;
        return space >= 0 && int.TryParse(argument[(space + 1)..].TrimStart((byte)' '), NumberStyles.None, CultureInfo.InvariantCulture, out lines);
    }

    private bool TryMessage(ReadOnlySpan<byte> argument, out int index)
    {
        index = -1;
        if (!int.TryParse(argument.Trim((byte)' '), NumberStyles.None, CultureInfo.InvariantCulture, out int number)
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
        if (text.Length == 0)
        {
            WriteRaw("+OK\r\n"u8);
            return true;
        }

        WriteRaw("+OK "u8);
        _replies.Write(text);
        WriteRaw("\r\n"u8);
        return true;
    }

    private bool Err(string text)
    {
        WriteRaw("-ERR "u8);
        _replies.Write(text);
        WriteRaw("\r\n"u8);
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
