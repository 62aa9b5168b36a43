using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Logging;
using SlimMail.Auth;
using SlimMail.Delivery;
using SlimMail.Transport;

namespace SlimMail.Smtp;

/// <summary>
/// One SMTP dialogue (RFC 5321) over a <see cref="TransportConnection"/>. Reads command lines from a pipe,
/// checks each against <see cref="SmtpStateTable"/>, runs one method per verb, and streams DATA and BDAT
/// into an <see cref="IMessageTransaction"/>. Replies are batched and flushed only when the client has
/// nothing more pipelined, which is RFC 2920's PIPELINING for free.
/// </summary>
public sealed partial class SmtpSession
{
    private const int BodyBufferSize = 64 * 1024;

    private readonly TransportConnection _connection;
    private readonly SmtpServerOptions _options;
    private readonly IMessageHandler _handler;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private readonly CancellationTokenSource _commandTimer;
    private readonly CancellationTokenSource _dataTimer;
    private readonly LineReader _lines;
    // The flush a line read runs before it waits: one delegate for the session, not one per line.
    private readonly Func<CancellationToken, ValueTask> _flushBeforeWait;
    private readonly long _maxMessageSize;
    private readonly List<string> _recipients = [];

    private PipeReader _input;
    private readonly ReplyWriter _replies;
    private SmtpState _state = SmtpState.Connected;
    private int _errors;

    private IMessageTransaction? _transaction;
    private MailTransactionContext? _context;
    private byte[]? _body;
    private int _receivedLength;
    private string? _messageId;
    private int _bodyFilled;
    private long _messageSize;
    private bool _messageTooBig;
    private bool _deliveryFailed;
    private BareLineEndingDetector _chunkGuard;
    private DotDataDecoder _dataDecoder;
    private long _transactionStarted;

    /// <summary>Creates a session; <see cref="RunAsync"/> runs it.</summary>
    /// <param name="connection">The client connection.</param>
    /// <param name="info">What deliveries may know of the session.</param>
    /// <param name="options">Limits and names.</param>
    /// <param name="handler">Where messages go.</param>
    /// <param name="logger">Where events are logged.</param>
    /// <param name="stopping">Signalled on shutdown: idle sessions are closed with <c>421 4.3.2</c>.</param>
    /// <param name="abort">Signalled when the shutdown grace period is over: everything stops.</param>
    public SmtpSession(TransportConnection connection, SmtpSessionInfo info, SmtpServerOptions options,
        IMessageHandler handler, ILogger logger, CancellationToken stopping, CancellationToken abort)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        _connection = connection;
        Info = info;
        _options = options;
        _handler = handler;
        _logger = logger;
        _stopping = stopping;
        _input = connection.Input;
        _replies = new ReplyWriter(connection.Output);
        _commandTimer = CancellationTokenSource.CreateLinkedTokenSource(stopping, abort);
        _dataTimer = CancellationTokenSource.CreateLinkedTokenSource(abort);
        _lines = new LineReader(options.MaxCommandLineLength);
        _flushBeforeWait = FlushAsync;
        _maxMessageSize = handler.MaxMessageSize > 0 ? Math.Min(handler.MaxMessageSize, options.MaxMessageSize) : options.MaxMessageSize;
    }

    /// <summary>What deliveries see of this session.</summary>
    public SmtpSessionInfo Info { get; }

    /// <summary>Runs the dialogue until the client quits, is cut off, or the server stops.</summary>
    public async Task RunAsync()
    {
        using IDisposable? scope = _logger.BeginScope(new SessionLogScope("smtp", Info.RemoteEndPoint));
        SlimMailMetrics.Connections.Add(1, new KeyValuePair<string, object?>("protocol", "smtp"));
        SlimMailMetrics.Sessions.Add(1, new KeyValuePair<string, object?>("protocol", "smtp"), new KeyValuePair<string, object?>("role", Info.Role.ToString()));
        if (_connection.IsSecure)
        {
            SlimMailMetrics.RecordTls("smtp", _connection.TlsVersion);
        }

        try
        {
            Reply(new SmtpReply(220, null, _options.Hostname + " ESMTP SlimMail"));
            // Greeting first, log line second: the client need not wait for the logger's wake-up.
            await FlushNowAsync().ConfigureAwait(false);
            LogConnected(_logger, Info.RemoteEndPoint, Info.LocalEndPoint, Info.Role);
            while (await NextCommandAsync().ConfigureAwait(false))
            {
            }

            await FlushAsync(_commandTimer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away or was cut off; nothing to answer.
        }
        finally
        {
            await AbortTransactionAsync().ConfigureAwait(false);
            _commandTimer.Dispose();
            _dataTimer.Dispose();
            LogDisconnected(_logger, Info.RemoteEndPoint);
        }
    }

    // Reads, checks and runs one command. False ends the session.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> NextCommandAsync()
    {
        LineStatus status = await ReadCommandLineAsync().ConfigureAwait(false);
        switch (status)
        {
            case LineStatus.Closed:
                return false;
            case LineStatus.TimedOut:
                await SayGoodbyeAsync(SmtpReplies.CommandTimeout).ConfigureAwait(false);
                return false;
            case LineStatus.ShuttingDown:
                await SayGoodbyeAsync(SmtpReplies.ShuttingDown).ConfigureAwait(false);
                return false;
            case LineStatus.TooLong:
                return ReplyError(SmtpReplies.LineTooLong);
            default:
                return await Execute(_lines.Line).ConfigureAwait(false);
        }
    }

    private ValueTask<bool> Execute(ReadOnlySpan<byte> line)
    {
        if (line.IndexOfAny((byte)'\r', (byte)'\0') >= 0)
        {
            return Done(ReplyError(SmtpReplies.BadCharacters));
        }

        SmtpVerb verb = SmtpCommandParser.Parse(line, out ReadOnlySpan<byte> argument);
        if (verb == SmtpVerb.Http)
        {
            // Cross-protocol request (a browser or proxy pointed at us): say nothing, hang up.
            LogHttpCommand(_logger, Info.RemoteEndPoint);
            return Done(false);
        }

        if (!SmtpStateTable.IsAllowed(verb, _state))
        {
            SmtpReply refusal = SmtpStateTable.Refusal(verb, _state);
            // A BDAT chunk follows its command whatever we think of it; it must never be read as commands.
            return verb == SmtpVerb.Bdat ? DrainChunkThenRefuseAsync(argument, refusal) : Done(ReplyError(refusal));
        }

        return verb switch
        {
            SmtpVerb.Ehlo => Done(Ehlo(argument, extended: true)),
            SmtpVerb.Helo => Done(Ehlo(argument, extended: false)),
            SmtpVerb.Mail => Mail(argument),
            SmtpVerb.Rcpt => Rcpt(argument),
            SmtpVerb.Data => argument.IsEmpty ? DataAsync() : Done(ReplyError(SmtpReplies.NoArguments)),
            SmtpVerb.Bdat => Bdat(argument),
            SmtpVerb.Rset => argument.IsEmpty ? RsetAsync() : Done(ReplyError(SmtpReplies.NoArguments)),
            SmtpVerb.Noop => Done(Reply(SmtpReplies.Ok)),
            SmtpVerb.Quit => QuitAsync(),
            SmtpVerb.Vrfy => Done(argument.IsEmpty ? ReplyError(SmtpReplies.BadAddressSyntax) : Reply(SmtpReplies.CannotVerify)),
            SmtpVerb.Help => Done(Reply(SmtpReplies.Help)),
            SmtpVerb.StartTls => StartTls(argument),
            SmtpVerb.Auth => Auth(argument),
            SmtpVerb.Expn => Done(ReplyError(SmtpReplies.NotImplemented)),
            _ => Done(ReplyError(SmtpReplies.UnknownCommand)),
        };
    }

    private static ValueTask<bool> Done(bool keepGoing) => ValueTask.FromResult(keepGoing);

    private bool Ehlo(ReadOnlySpan<byte> argument, bool extended)
    {
        if (argument.IsEmpty)
        {
            return ReplyError(SmtpReplies.HeloRequiresDomain);
        }

        // RFC 5321 §4.1.4: EHLO in the middle of a transaction resets it.
        DropTransaction();
        Info.HeloName = Encoding.UTF8.GetString(argument);
        Info.IsExtended = extended;
        _state = SmtpState.Greeted;
        var ehlo = EhloReply.For(_options.Hostname, _maxMessageSize, startTls: _options.Tls is not null && !_connection.IsSecure, auth: AuthOffered);
        if (extended)
        {
            WriteRaw(ehlo.Bytes);
            return true;
        }

        return Reply(ehlo.Helo);
    }

    private ValueTask<bool> Mail(ReadOnlySpan<byte> argument)
    {
        if (Info.Role == ListenerRole.Submission && Info.AuthenticatedUser is null)
        {
            // RFC 4954 §6: a submission port takes mail from authenticated users only.
            return Done(Reply(SmtpReplies.AuthenticationRequired));
        }

        if (!TrySkipPrefix(ref argument, "FROM:"u8)
            || !AddressParser.TryParsePath(argument, allowNull: true, allowBarePostmaster: false, out MailAddress? sender, out int used))
        {
            return Done(ReplyError(argument.IsEmpty || argument[0] != (byte)'<' ? SmtpReplies.MailSyntax : SmtpReplies.BadSenderSyntax));
        }

        bool smtpUtf8 = false;
        bool eightBit = false;
        long declaredSize = 0;
        foreach (EsmtpParameter parameter in new EsmtpParameterReader(argument[used..]))
        {
            if (parameter.Is("SIZE"u8))
            {
                if (!Utf8Parser.TryParse(parameter.Value, out declaredSize, out int n) || n != parameter.Value.Length || declaredSize < 0)
                {
                    return Done(ReplyError(SmtpReplies.BadParameterValue));
                }
            }
            else if (parameter.Is("BODY"u8))
            {
                if (Ascii.EqualsIgnoreCase(parameter.Value, "8BITMIME"u8))
                {
                    eightBit = true;
                }
                else if (!Ascii.EqualsIgnoreCase(parameter.Value, "7BIT"u8))
                {
                    return Done(ReplyError(SmtpReplies.BadParameterValue));
                }
            }
            else if (parameter.Is("SMTPUTF8"u8) && !parameter.HasValue)
            {
                smtpUtf8 = true;
            }
            else if (parameter.Is("AUTH"u8))
            {
                // RFC 4954 §5: accepted and ignored; a client's claim about the original submitter proves nothing.
            }
            else
            {
                return Done(ReplyError(parameter.IsMalformed ? SmtpReplies.MailSyntax : SmtpReplies.UnknownParameter));
            }
        }

        if (sender is { IsInternational: true } && !smtpUtf8)
        {
            return Done(Reply(SmtpReplies.NeedSmtpUtf8));
        }

        if (declaredSize > _maxMessageSize)
        {
            return Done(Reply(SmtpReplies.MessageTooBigForServer));
        }

        return MailAsync(new MailTransactionContext(QueueIdGenerator.Next(), Info, sender, smtpUtf8, eightBit, declaredSize));
    }

    private async ValueTask<bool> MailAsync(MailTransactionContext context)
    {
        TransactionStart start = await _handler.BeginAsync(context, _commandTimer.Token).ConfigureAwait(false);
        if (start.Transaction is not null)
        {
            _context = context;
            _transaction = start.Transaction;
            _transactionStarted = Stopwatch.GetTimestamp();
            _state = SmtpState.Mail;
        }

        return Reply(start.Reply);
    }

    private ValueTask<bool> Rcpt(ReadOnlySpan<byte> argument)
    {
        if (!TrySkipPrefix(ref argument, "TO:"u8)
            || !AddressParser.TryParsePath(argument, allowNull: false, allowBarePostmaster: true, out MailAddress? recipient, out int used))
        {
            return Done(ReplyError(argument.IsEmpty || argument[0] != (byte)'<' ? SmtpReplies.RcptSyntax : SmtpReplies.BadAddressSyntax));
        }

        foreach (EsmtpParameter parameter in new EsmtpParameterReader(argument[used..]))
        {
            return Done(ReplyError(parameter.IsMalformed ? SmtpReplies.RcptSyntax : SmtpReplies.UnknownParameter));
        }

        if (recipient!.IsInternational && !_context!.SmtpUtf8)
        {
            return Done(Reply(SmtpReplies.NeedSmtpUtf8));
        }

        if (_recipients.Count >= _options.MaxRecipients)
        {
            return Done(Reply(SmtpReplies.TooManyRecipients));
        }

        return RcptAsync(recipient);
    }

    private async ValueTask<bool> RcptAsync(MailAddress recipient)
    {
        SmtpReply reply = await _transaction!.AddRecipientAsync(recipient, _commandTimer.Token).ConfigureAwait(false);
        if (reply.IsPositive)
        {
            _recipients.Add(recipient.ToString());
            _state = SmtpState.Rcpt;
        }
        else
        {
            if (_logger.IsEnabled(LogLevel.Information))
            {
                LogRecipientRejected(_logger, _context!.QueueId, recipient.ToString(), reply.ToString());
            }

        }

        return Reply(reply);
    }

    // ---- STARTTLS (RFC 3207) and AUTH (RFC 4954) ------------------------------------------------

    // AUTH is for mail clients: never on a Local listener, and off loopback only inside TLS unless configured otherwise.
    private bool AuthOffered => _options.Authenticator is not null && Info.Role != ListenerRole.Local
        && (_connection.IsSecure || !_options.RequireTlsForAuth || Info.IsLoopback);

    private ValueTask<bool> StartTls(ReadOnlySpan<byte> argument)
    {
        if (!argument.IsEmpty)
        {
            return Done(ReplyError(SmtpReplies.NoArguments));
        }

        if (_options.Tls is null)
        {
            return Done(ReplyError(SmtpReplies.NotImplemented));
        }

        return _connection.IsSecure ? Done(ReplyError(SmtpReplies.TlsAlreadyActive)) : StartTlsAsync();
    }

    private async ValueTask<bool> StartTlsAsync()
    {
        Reply(SmtpReplies.ReadyForTls);
        _commandTimer.CancelAfter(_options.CommandTimeout);
        try
        {
            await FlushAsync(_commandTimer.Token).ConfigureAwait(false);
            // Plaintext pipelined after STARTTLS is discarded with the old reader (CVE-2011-0411).
            await _connection.StartTlsAsync(_options.Tls!(), _commandTimer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
        {
            LogTlsFailed(_logger, Info.RemoteEndPoint, e.Message);
            return false;
        }
        finally
        {
            _commandTimer.CancelAfter(Timeout.Infinite);
        }

        _input = _connection.Input;
        _replies.Output = _connection.Output;
        Info.TlsDescription = _connection.TlsDescription;
        SlimMailMetrics.RecordTls("smtp", _connection.TlsVersion);
        // RFC 3207 §4.2: forget everything learned before TLS; the client starts over with EHLO.
        DropTransaction();
        Info.HeloName = null;
        Info.IsExtended = false;
        _state = SmtpState.Connected;
        return true;
    }

    private ValueTask<bool> Auth(ReadOnlySpan<byte> argument)
    {
        if (_options.Authenticator is null || Info.Role == ListenerRole.Local)
        {
            return Done(ReplyError(SmtpReplies.NotImplemented));
        }

        if (!AuthOffered)
        {
            return Done(Reply(SmtpReplies.AuthNeedsTls));
        }

        if (Info.AuthenticatedUser is not null)
        {
            return Done(ReplyError(SmtpReplies.AlreadyAuthenticated));
        }

        int space = argument.IndexOf((byte)' ');
        ReadOnlySpan<byte> mechanism = space < 0 ? argument : argument[..space];
        string? initial = space < 0 ? null : Encoding.ASCII.GetString(argument[(space + 1)..].Trim((byte)' '));
        bool plain = Ascii.EqualsIgnoreCase(mechanism, "PLAIN"u8);
        if (!plain && !Ascii.EqualsIgnoreCase(mechanism, "LOGIN"u8))
        {
            return Done(ReplyError(SmtpReplies.AuthUnknownMechanism));
        }

        return AuthAsync(plain, initial);
    }

    private async ValueTask<bool> AuthAsync(bool plain, string? initial)
    {
        System.Net.IPAddress client = Info.RemoteEndPoint.Address;
        if (_options.AuthThrottle.IsBlocked(client))
        {
            LogAuthBlocked(_logger, Info.RemoteEndPoint);
            return Reply(SmtpReplies.AuthBlocked);
        }

        string? user;
        string? password;
        if (plain)
        {
            (SaslStep step, byte[]? response) = await SaslResponseAsync(initial, "").ConfigureAwait(false);
            if (step != SaslStep.Ok)
            {
                return step != SaslStep.Closed;
            }

            if (!Sasl.TryParsePlain(response!, out user, out password))
            {
                return await FailAuthAsync(client, "PLAIN", user).ConfigureAwait(false);
            }
        }
        else
        {
            (SaslStep step, byte[]? name) = await SaslResponseAsync(initial, "VXNlcm5hbWU6").ConfigureAwait(false); // "Username:"
            if (step != SaslStep.Ok)
            {
                return step != SaslStep.Closed;
            }

            (step, byte[]? secret) = await SaslResponseAsync(null, "UGFzc3dvcmQ6").ConfigureAwait(false); // "Password:"
            if (step != SaslStep.Ok)
            {
                return step != SaslStep.Closed;
            }

            user = Encoding.UTF8.GetString(name!);
            password = Encoding.UTF8.GetString(secret!);
        }

        AuthResult result = await _options.Authenticator!.AuthenticateAsync(user!, password!, _commandTimer.Token).ConfigureAwait(false);
        switch (result.Status)
        {
            case AuthStatus.Success:
                Info.AuthenticatedUser = result.User;
                LogAuthenticated(_logger, Info.RemoteEndPoint, plain ? "PLAIN" : "LOGIN", Sasl.Printable(result.User!));
                return Reply(SmtpReplies.AuthSucceeded);
            case AuthStatus.TemporaryFailure:
                LogAuthTemporaryFailure(_logger, Info.RemoteEndPoint, Sasl.Printable(user!));
                return Reply(SmtpReplies.AuthTemporaryFailure);
            default:
                return await FailAuthAsync(client, plain ? "PLAIN" : "LOGIN", user).ConfigureAwait(false);
        }
    }

    private async ValueTask<bool> FailAuthAsync(System.Net.IPAddress client, string mechanism, string? user)
    {
        // The password is never logged; the user name only in printable form.
        LogAuthFailed(_logger, Info.RemoteEndPoint, mechanism, Sasl.Printable(user ?? ""));
        SlimMailMetrics.AuthFailures.Add(1, new KeyValuePair<string, object?>("protocol", "smtp"));
        TimeSpan delay = _options.AuthThrottle.RecordFailure(client);
        await Task.Delay(delay).ConfigureAwait(false);
        return Reply(SmtpReplies.AuthFailed);
    }

    private enum SaslStep
    {
        Ok,
        Refused,
        Closed,
    }

    // The initial response if the client gave one, else a 334 challenge and the client's next line.
    private async ValueTask<(SaslStep, byte[]?)> SaslResponseAsync(string? initial, string challenge)
    {
        string text;
        if (initial is not null)
        {
            text = initial == "=" ? "" : initial;
        }
        else
        {
            WriteRaw(Encoding.ASCII.GetBytes("334 " + challenge + "\r\n"));
            LineStatus status = await ReadCommandLineAsync().ConfigureAwait(false);
            if (status != LineStatus.Line)
            {
                return (SaslStep.Closed, null);
            }

            text = Encoding.ASCII.GetString(_lines.Line);
        }

        if (text == "*")
        {
            Reply(SmtpReplies.AuthCancelled);
            return (SaslStep.Refused, null);
        }

        try
        {
            return (SaslStep.Ok, Convert.FromBase64String(text));
        }
        catch (FormatException)
        {
            Reply(SmtpReplies.AuthBadBase64);
            return (SaslStep.Refused, null);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> DataAsync()
    {
        Reply(SmtpReplies.StartData);
        CancellationToken token = _dataTimer.Token;
        _dataTimer.CancelAfter(_options.DataTimeout);
        await FlushAsync(token).ConfigureAwait(false);
        StartMessage();
        _dataDecoder.Reset();
        while (true)
        {
            _dataTimer.CancelAfter(_options.DataTimeout);
            ReadResult result = await ReadDataAsync(token).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            long consumed = 0;
            bool done = false;
            foreach (ReadOnlyMemory<byte> segment in buffer)
            {
                int offset = 0;
                while (offset < segment.Length && !done)
                {
                    OperationStatus status = _dataDecoder.Decode(segment.Span[offset..], _body.AsSpan(_bodyFilled), out int used, out int written);
                    offset += used;
                    done = status == OperationStatus.Done;
                    await AcceptBodyBytesAsync(written, _dataDecoder.SawBareLineEnding || _dataDecoder.SawNul, status == OperationStatus.DestinationTooSmall).ConfigureAwait(false);
                    _dataDecoder.Discarding |= _messageTooBig || _deliveryFailed;
                }

                consumed += offset;
                if (done)
                {
                    break;
                }
            }

            _input.AdvanceTo(buffer.GetPosition(consumed));
            if (done)
            {
                break;
            }

            if (result.IsCompleted)
            {
                // The client vanished mid-message: nothing is kept.
                return false;
            }
        }

        _dataTimer.CancelAfter(Timeout.Infinite);
        return await FinishMessageAsync(_dataDecoder.SawBareLineEnding, _dataDecoder.SawNul).ConfigureAwait(false);
    }

    private ValueTask<bool> Bdat(ReadOnlySpan<byte> argument)
    {
        if (!TryParseBdat(argument, out long size, out bool last))
        {
            // Without a size we cannot know where the chunk ends; reading on would run message text as commands.
            return SayGoodbyeThenCloseAsync(SmtpReplies.BdatSyntax);
        }

        return BdatAsync(size, last);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> BdatAsync(long size, bool last)
    {
        if (_state == SmtpState.Rcpt)
        {
            StartMessage();
            _chunkGuard.Reset();
            _state = SmtpState.Chunking;
        }

        bool wasTooBig = _messageTooBig;
        CancellationToken token = _dataTimer.Token;
        long remaining = size;
        while (remaining > 0)
        {
            _dataTimer.CancelAfter(_options.DataTimeout);
            ReadResult result = await ReadDataAsync(token).ConfigureAwait(false);
            ReadOnlySequence<byte> chunk = result.Buffer.Slice(0, Math.Min(remaining, result.Buffer.Length));
            foreach (ReadOnlyMemory<byte> segment in chunk)
            {
                _chunkGuard.Scan(segment.Span);
                int offset = 0;
                while (offset < segment.Length)
                {
                    int n = Math.Min(segment.Length - offset, BodyBufferSize - _bodyFilled);
                    segment.Span.Slice(offset, n).CopyTo(_body.AsSpan(_bodyFilled));
                    offset += n;
                    await AcceptBodyBytesAsync(n, _chunkGuard.SawBareLineEnding || _chunkGuard.SawNul, bufferFull: false).ConfigureAwait(false);
                }
            }

            remaining -= chunk.Length;
            _input.AdvanceTo(chunk.End);
            if (remaining > 0 && result.IsCompleted)
            {
                return false;
            }
        }

        _dataTimer.CancelAfter(Timeout.Infinite);
        if (_messageTooBig && !wasTooBig)
        {
            // Refused at once; any chunks the client pipelined after this one are drained and refused as out of sequence.
            SlimMailMetrics.MessagesRejected.Add(1, new KeyValuePair<string, object?>("reason", "size"));
            LogMessageRejected(_logger, _context!.QueueId, Info.RemoteEndPoint, SmtpReplies.MessageTooBigForServer.Text);
            DropTransaction();
            _state = SmtpState.Greeted;
            return Reply(SmtpReplies.MessageTooBigForServer);
        }

        if (!last)
        {
            return Reply(new SmtpReply(250, "2.0.0", size.ToString(System.Globalization.CultureInfo.InvariantCulture) + " octets received"));
        }

        return await FinishMessageAsync(_chunkGuard.SawBareLineEnding || _chunkGuard.EndsWithBareCr, _chunkGuard.SawNul).ConfigureAwait(false);
    }

    private async ValueTask<bool> RsetAsync()
    {
        await AbortTransactionAsync().ConfigureAwait(false);
        ResetTransactionState();
        if (_state != SmtpState.Connected)
        {
            _state = SmtpState.Greeted;
        }

        return Reply(SmtpReplies.ResetOk);
    }

    private ValueTask<bool> QuitAsync() => SayGoodbyeThenCloseAsync(SmtpReplies.Bye);

    // ---- message body -------------------------------------------------------------------------

    private void StartMessage()
    {
        _body ??= ArrayPool<byte>.Shared.Rent(BodyBufferSize);
        _bodyFilled = 0;
        _messageSize = 0;
        _messageTooBig = false;
        _deliveryFailed = false;
        byte[] received = ReceivedHeader.Build(Info, _options.Hostname, _context!.QueueId, _context.SmtpUtf8,
            _recipients.Count == 1 ? _recipients[0] : null, DateTimeOffset.Now);
        received.CopyTo(_body, 0);
        _bodyFilled = received.Length;
        _receivedLength = received.Length;
        _messageId = null;
    }

    // Counts what was copied into the body buffer, enforces the size limit, and hands the buffer to the
    // delivery when it is full. Once the message is refused (too big, bare CR/LF, failed delivery) the rest
    // is only drained: nothing more reaches the delivery.
    private ValueTask AcceptBodyBytesAsync(int written, bool sawBareLineEnding, bool bufferFull)
    {
        _messageSize += written;
        if (_messageSize > _maxMessageSize)
        {
            _messageTooBig = true;
        }

        if (_messageTooBig || _deliveryFailed || sawBareLineEnding)
        {
            _bodyFilled = 0;
            return default;
        }

        _bodyFilled += written;
        return bufferFull || _bodyFilled == BodyBufferSize ? WriteBodyAsync() : default;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteBodyAsync()
    {
        if (_bodyFilled == 0 || _deliveryFailed)
        {
            _bodyFilled = 0;
            return;
        }

        if (_messageSize == _bodyFilled - _receivedLength && _logger.IsEnabled(LogLevel.Information))
        {
            // The first buffer of the message: its header section is (almost always) here.
            _messageId = MessageIdHeader.Find(_body.AsSpan(_receivedLength, _bodyFilled - _receivedLength));
        }

        try
        {
            await _transaction!.WriteAsync(_body.AsMemory(0, _bodyFilled), _dataTimer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogDeliveryError(_logger, _context!.QueueId, e);
            _deliveryFailed = true;
        }

        _bodyFilled = 0;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FinishMessageAsync(bool sawBareLineEnding, bool sawNul)
    {
        SmtpReply reply;
        if (sawBareLineEnding)
        {
            reply = SmtpReplies.BareLineEnding;
        }
        else if (sawNul)
        {
            reply = SmtpReplies.NulInMessage;
        }
        else if (_messageTooBig)
        {
            reply = SmtpReplies.MessageTooBigForServer;
        }
        else
        {
            await WriteBodyAsync().ConfigureAwait(false);
            reply = _deliveryFailed ? SmtpReplies.TransactionFailed : await CommitAsync().ConfigureAwait(false);
        }

        if (reply.Code == 250)
        {
            SlimMailMetrics.MessagesAccepted.Add(1);
            SlimMailMetrics.ReceivedBytes.Add(_messageSize);
            double ms = Stopwatch.GetElapsedTime(_transactionStarted).TotalMilliseconds;
            Reply(reply);
            if (_logger.IsEnabled(LogLevel.Information))
            {
                // The client hears 250 before the log line is queued: waking the logger's thread costs a
                // system call (and on a virtual machine often a CPU wake-up) that the sender need not wait for.
                await FlushNowAsync().ConfigureAwait(false);
                LogAccepted(_logger, _context!.QueueId, _context.Sender?.ToString() ?? "", string.Join(",", _recipients), _messageSize, ms, _messageId ?? "-");
            }

            await DisposeTransactionAsync().ConfigureAwait(false);
        }
        else
        {
            string reason = sawBareLineEnding ? "bare_line_ending" : sawNul ? "nul" : _messageTooBig ? "size" : "delivery";
            SlimMailMetrics.MessagesRejected.Add(1, new KeyValuePair<string, object?>("reason", reason));
            if (_logger.IsEnabled(LogLevel.Information))
            {
                LogMessageRejected(_logger, _context!.QueueId, Info.RemoteEndPoint, reply.ToString());
            }

            await AbortTransactionAsync().ConfigureAwait(false);
            Reply(reply);
        }

        ResetTransactionState();
        _state = SmtpState.Greeted;
        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpReply> CommitAsync()
    {
        try
        {
            return await _transaction!.CommitAsync(_dataTimer.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogDeliveryError(_logger, _context!.QueueId, e);
            return SmtpReplies.TransactionFailed;
        }
    }

    private ValueTask<bool> DrainChunkThenRefuseAsync(ReadOnlySpan<byte> argument, SmtpReply refusal)
    {
        if (!TryParseBdat(argument, out long size, out _))
        {
            return SayGoodbyeThenCloseAsync(SmtpReplies.BdatSyntax);
        }

        return DrainAsync(size, refusal);
    }

    private async ValueTask<bool> DrainAsync(long size, SmtpReply refusal)
    {
        CancellationToken token = _dataTimer.Token;
        while (size > 0)
        {
            _dataTimer.CancelAfter(_options.DataTimeout);
            ReadResult result = await ReadDataAsync(token).ConfigureAwait(false);
            long n = Math.Min(size, result.Buffer.Length);
            _input.AdvanceTo(result.Buffer.GetPosition(n));
            size -= n;
            if (size > 0 && result.IsCompleted)
            {
                return false;
            }
        }

        _dataTimer.CancelAfter(Timeout.Infinite);
        return ReplyError(refusal);
    }

    private async ValueTask<bool> SayGoodbyeThenCloseAsync(SmtpReply reply)
    {
        await SayGoodbyeAsync(reply).ConfigureAwait(false);
        return false;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> ReadDataAsync(CancellationToken token)
    {
        try
        {
            return await _input.ReadAsync(token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_dataTimer.IsCancellationRequested)
        {
            // Either the client fell silent, or shutdown's grace period ran out while it was still sending.
            await SayGoodbyeAsync(_stopping.IsCancellationRequested ? SmtpReplies.ShuttingDown : SmtpReplies.DataTimeout).ConfigureAwait(false);
            throw;
        }
    }

    private async ValueTask AbortTransactionAsync()
    {
        IMessageTransaction? transaction = _transaction;
        _transaction = null;
        if (transaction is not null)
        {
            try
            {
                await transaction.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogDeliveryError(_logger, _context?.QueueId ?? "-", e);
            }
        }
    }

    private ValueTask DisposeTransactionAsync() => AbortTransactionAsync();

    // For resets that happen inside a synchronous command (EHLO, a refused BDAT): the transaction's
    // cleanup runs in the background, its errors logged.
    private void DropTransaction()
    {
        ValueTask abort = AbortTransactionAsync();
        if (!abort.IsCompletedSuccessfully)
        {
            _ = abort.AsTask();
        }

        ResetTransactionState();
    }

    private void ResetTransactionState()
    {
        _recipients.Clear();
        _context = null;
        _messageSize = 0;
        _messageTooBig = false;
        _deliveryFailed = false;
        _bodyFilled = 0;
        if (_body is not null)
        {
            ArrayPool<byte>.Shared.Return(_body);
            _body = null;
        }
    }

    // ---- lines and replies ---------------------------------------------------------------------

    private enum LineStatus
    {
        Line,
        TooLong,
        Closed,
        TimedOut,
        ShuttingDown,
    }

    // The deadline covers the whole line, so a client dribbling one byte at a time is cut off.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<LineStatus> ReadCommandLineAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return LineStatus.ShuttingDown;
        }

        _commandTimer.CancelAfter(_options.CommandTimeout);
        try
        {
            LineReadStatus status = await _lines.ReadAsync(_input, _flushBeforeWait, _commandTimer.Token).ConfigureAwait(false);
            _commandTimer.CancelAfter(Timeout.Infinite);
            return status switch
            {
                LineReadStatus.Line => LineStatus.Line,
                LineReadStatus.TooLong => LineStatus.TooLong,
                _ => LineStatus.Closed,
            };
        }
        catch (OperationCanceledException) when (_commandTimer.IsCancellationRequested)
        {
            return _stopping.IsCancellationRequested ? LineStatus.ShuttingDown : LineStatus.TimedOut;
        }
    }

    private bool Reply(SmtpReply reply)
    {
        WriteRaw(reply.Encoded.Span);
        return true;
    }

    // A bad command: counted, and the Nth one ends the session.
    private bool ReplyError(SmtpReply reply)
    {
        if (++_errors >= _options.MaxErrors)
        {
            Reply(SmtpReplies.TooManyErrors);
            LogTooManyErrors(_logger, Info.RemoteEndPoint);
            return false;
        }

        return Reply(reply);
    }

    private void WriteRaw(ReadOnlySpan<byte> bytes) => _replies.Write(bytes);

    private ValueTask FlushAsync(CancellationToken token) => _replies.FlushAsync(token);

    // Sends what is buffered now rather than before the next read; bounded like any command's flush.
    private async ValueTask FlushNowAsync()
    {
        _commandTimer.CancelAfter(_options.CommandTimeout);
        await FlushAsync(_commandTimer.Token).ConfigureAwait(false);
        _commandTimer.CancelAfter(Timeout.Infinite);
    }

    private async ValueTask SayGoodbyeAsync(SmtpReply reply)
    {
        Reply(reply);
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await FlushAsync(grace.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
        }
    }

    private static bool TrySkipPrefix(ref ReadOnlySpan<byte> argument, ReadOnlySpan<byte> prefix)
    {
        if (argument.Length < prefix.Length || !Ascii.EqualsIgnoreCase(argument[..prefix.Length], prefix))
        {
            return false;
        }

        // "MAIL FROM: <a@b>" is common enough (and harmless) to accept.
        argument = argument[prefix.Length..].TrimStart((byte)' ');
        return true;
    }

    private static bool TryParseBdat(ReadOnlySpan<byte> argument, out long size, out bool last)
    {
        last = false;
        int space = argument.IndexOf((byte)' ');
        ReadOnlySpan<byte> number = space < 0 ? argument : argument[..space];
        if (number.IsEmpty || number.Length > 18 || !Utf8Parser.TryParse(number, out size, out int used) || used != number.Length || size < 0)
        {
            size = 0;
            return false;
        }

        if (space >= 0)
        {
            if (!Ascii.EqualsIgnoreCase(argument[(space + 1)..].Trim((byte)' '), "LAST"u8))
            {
                return false;
            }

            last = true;
        }

        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "connect from {Remote} to {Local} ({Role})")]
    private static partial void LogConnected(ILogger logger, System.Net.IPEndPoint remote, System.Net.IPEndPoint local, ListenerRole role);

    [LoggerMessage(Level = LogLevel.Debug, Message = "disconnect from {Remote}")]
    private static partial void LogDisconnected(ILogger logger, System.Net.IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: accepted from=<{Sender}> to=<{Recipients}> size={Size} time={ElapsedMs:F1}ms message-id={MessageId}")]
    private static partial void LogAccepted(ILogger logger, string queueId, string sender, string recipients, long size, double elapsedMs, string messageId);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: rejected message from {Remote}: {Reply}")]
    private static partial void LogMessageRejected(ILogger logger, string queueId, System.Net.IPEndPoint remote, string reply);

    [LoggerMessage(Level = LogLevel.Information, Message = "{QueueId}: recipient <{Recipient}> rejected: {Reply}")]
    private static partial void LogRecipientRejected(ILogger logger, string queueId, string recipient, string reply);

    [LoggerMessage(Level = LogLevel.Error, Message = "{QueueId}: delivery failed")]
    private static partial void LogDeliveryError(ILogger logger, string queueId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "TLS handshake with {Remote} failed: {Error}")]
    private static partial void LogTlsFailed(ILogger logger, System.Net.IPEndPoint remote, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Remote} authenticated as {User} ({Mechanism})")]
    private static partial void LogAuthenticated(ILogger logger, System.Net.IPEndPoint remote, string mechanism, string user);

    [LoggerMessage(Level = LogLevel.Warning, Message = "authentication failed from {Remote} ({Mechanism}) for user {User}")]
    private static partial void LogAuthFailed(ILogger logger, System.Net.IPEndPoint remote, string mechanism, string user);

    [LoggerMessage(Level = LogLevel.Warning, Message = "authentication from {Remote} for user {User} could not be checked (temporary failure)")]
    private static partial void LogAuthTemporaryFailure(ILogger logger, System.Net.IPEndPoint remote, string user);

    [LoggerMessage(Level = LogLevel.Warning, Message = "authentication from {Remote} refused: too many failures")]
    private static partial void LogAuthBlocked(ILogger logger, System.Net.IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Warning, Message = "HTTP command from {Remote}: connection closed")]
    private static partial void LogHttpCommand(ILogger logger, System.Net.IPEndPoint remote);

    [LoggerMessage(Level = LogLevel.Warning, Message = "too many errors from {Remote}: connection closed")]
    private static partial void LogTooManyErrors(ILogger logger, System.Net.IPEndPoint remote);
}
