namespace SlimMail.Smtp;

/// <summary>The replies the engine sends, built once.</summary>
public static class SmtpReplies
{
#pragma warning disable CS1591 // The names say what each reply is.
    public static readonly SmtpReply Ok = new(250, "2.0.0", "Ok");
    public static readonly SmtpReply SenderOk = new(250, "2.1.0", "Ok");
    public static readonly SmtpReply RecipientOk = new(250, "2.1.5", "Ok");
    public static readonly SmtpReply ResetOk = new(250, "2.0.0", "Ok");
    public static readonly SmtpReply Bye = new(221, "2.0.0", "Bye");
    public static readonly SmtpReply StartData = new(354, null, "End data with <CR><LF>.<CR><LF>");
    public static readonly SmtpReply CannotVerify = new(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery");
    public static readonly SmtpReply Help = new(214, "2.0.0", "See https://www.rfc-editor.org/rfc/rfc5321");

    public static readonly SmtpReply UnknownCommand = new(500, "5.5.2", "Error: command not recognized");
    public static readonly SmtpReply LineTooLong = new(500, "5.5.2", "Error: line too long");
    public static readonly SmtpReply BadCharacters = new(500, "5.5.2", "Error: bad characters in command");
    public static readonly SmtpReply NotImplemented = new(502, "5.5.1", "Error: command not implemented");
    public static readonly SmtpReply HeloRequiresDomain = new(501, "5.5.4", "Syntax: HELO/EHLO hostname");
    public static readonly SmtpReply MailSyntax = new(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    public static readonly SmtpReply RcptSyntax = new(501, "5.5.4", "Syntax: RCPT TO:<address>");
    public static readonly SmtpReply BadAddressSyntax = new(501, "5.1.3", "Bad address syntax");
    public static readonly SmtpReply BadSenderSyntax = new(501, "5.1.7", "Bad sender address syntax");
    public static readonly SmtpReply NoArguments = new(501, "5.5.4", "Syntax error: no arguments allowed");
    public static readonly SmtpReply BdatSyntax = new(501, "5.5.4", "Syntax: BDAT size [LAST]");
    public static readonly SmtpReply NeedHelo = new(503, "5.5.1", "Error: send HELO/EHLO first");
    public static readonly SmtpReply NestedMail = new(503, "5.5.1", "Error: nested MAIL command");
    public static readonly SmtpReply NeedMail = new(503, "5.5.1", "Error: need MAIL command");
    public static readonly SmtpReply NeedRcpt = new(503, "5.5.1", "Error: need RCPT command");
    public static readonly SmtpReply DataAfterBdat = new(503, "5.5.1", "Error: DATA cannot follow BDAT");
    public static readonly SmtpReply BadSequence = new(503, "5.5.1", "Error: bad sequence of commands");
    public static readonly SmtpReply UnknownParameter = new(555, "5.5.4", "Unsupported option");
    public static readonly SmtpReply BadParameterValue = new(501, "5.5.4", "Bad parameter value");
    public static readonly SmtpReply NeedSmtpUtf8 = new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
    public static readonly SmtpReply MessageTooBigForServer = new(552, "5.3.4", "Message size exceeds fixed maximum message size");
    public static readonly SmtpReply TooManyRecipients = new(452, "4.5.3", "Error: too many recipients");
    public static readonly SmtpReply BareLineEnding = new(550, "5.5.2", "Message contains bare CR or LF; use CRLF line endings");
    public static readonly SmtpReply NulInMessage = new(550, "5.6.0", "Message contains NUL characters");
    public static readonly SmtpReply TransactionFailed = new(451, "4.3.0", "Error: temporary failure, try again later");

    public static readonly SmtpReply ReadyForTls = new(220, "2.0.0", "Ready to start TLS");
    public static readonly SmtpReply TlsAlreadyActive = new(503, "5.5.1", "Error: TLS already active");
    public static readonly SmtpReply AuthSucceeded = new(235, "2.7.0", "Authentication successful");
    public static readonly SmtpReply AuthFailed = new(535, "5.7.8", "Error: authentication failed");
    public static readonly SmtpReply AuthTemporaryFailure = new(454, "4.7.0", "Temporary authentication failure");
    public static readonly SmtpReply AuthBlocked = new(454, "4.7.0", "Too many authentication failures; try again later");
    public static readonly SmtpReply AuthCancelled = new(501, "5.0.0", "Authentication cancelled");
    public static readonly SmtpReply AuthBadBase64 = new(501, "5.5.2", "Cannot decode response");
    public static readonly SmtpReply AuthUnknownMechanism = new(504, "5.5.4", "Unrecognized authentication type");
    public static readonly SmtpReply AuthNeedsTls = new(538, "5.7.11", "Encryption required for requested authentication mechanism");
    public static readonly SmtpReply AlreadyAuthenticated = new(503, "5.5.1", "Error: already authenticated");
    public static readonly SmtpReply AuthenticationRequired = new(530, "5.7.0", "Authentication required");

    public static readonly SmtpReply TooManyErrors = new(421, "4.7.0", "Error: too many errors");
    public static readonly SmtpReply TooManyConnections = new(421, "4.7.0", "Error: too many connections");
    public static readonly SmtpReply TooManyConnectionsFromAddress = new(421, "4.7.0", "Error: too many connections from your address");
    public static readonly SmtpReply CommandTimeout = new(421, "4.4.2", "Error: timeout exceeded");
    public static readonly SmtpReply DataTimeout = new(421, "4.4.2", "Error: timeout exceeded during data transfer");
    public static readonly SmtpReply ShuttingDown = new(421, "4.3.2", "Service shutting down, closing transmission channel");
#pragma warning restore CS1591
}
