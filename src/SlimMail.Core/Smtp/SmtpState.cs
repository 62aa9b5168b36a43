namespace SlimMail.Smtp;

/// <summary>Where an SMTP session is in its dialogue (RFC 5321 §4.1.4 and RFC 3030).</summary>
[Flags]
public enum SmtpState
{
    /// <summary>Connected, no EHLO/HELO yet.</summary>
    Connected = 1,

    /// <summary>Greeted, no mail transaction open.</summary>
    Greeted = 2,

    /// <summary>MAIL accepted, no recipient yet.</summary>
    Mail = 4,

    /// <summary>At least one recipient accepted.</summary>
    Rcpt = 8,

    /// <summary>Inside a BDAT sequence (chunks received, LAST not yet seen).</summary>
    Chunking = 16,

    /// <summary>Every state.</summary>
    Any = Connected | Greeted | Mail | Rcpt | Chunking,
}

/// <summary>
/// Which commands are allowed in which state, and what a client hears when it sends one out of order.
/// The session consults this table before running a command; the command methods never re-check order.
/// </summary>
internal static class SmtpStateTable
{
    private readonly record struct Rule(SmtpState Allowed, SmtpReply OutOfSequence);

    private static readonly Rule[] Rules = Build();

    public static bool IsAllowed(SmtpVerb verb, SmtpState state) => (Rules[(int)verb].Allowed & state) != 0;

    /// <summary>The reply to <paramref name="verb"/> sent in a state the table does not allow.</summary>
    public static SmtpReply Refusal(SmtpVerb verb, SmtpState state)
    {
        if (state == SmtpState.Connected)
        {
            return SmtpReplies.NeedHelo;
        }

        return verb switch
        {
            SmtpVerb.Data when state == SmtpState.Chunking => SmtpReplies.DataAfterBdat,
            SmtpVerb.Data or SmtpVerb.Bdat when state == SmtpState.Greeted => SmtpReplies.NeedMail,
            _ => Rules[(int)verb].OutOfSequence,
        };
    }

    private static Rule[] Build()
    {
        var rules = new Rule[Enum.GetValues<SmtpVerb>().Length];
        void Allow(SmtpVerb verb, SmtpState allowed, SmtpReply outOfSequence) => rules[(int)verb] = new Rule(allowed, outOfSequence);

        Allow(SmtpVerb.Unknown, SmtpState.Any, SmtpReplies.UnknownCommand);
        Allow(SmtpVerb.Http, SmtpState.Any, SmtpReplies.UnknownCommand);
        Allow(SmtpVerb.Ehlo, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Helo, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Mail, SmtpState.Greeted, SmtpReplies.NestedMail);
        Allow(SmtpVerb.Rcpt, SmtpState.Mail | SmtpState.Rcpt, SmtpReplies.NeedMail);
        Allow(SmtpVerb.Data, SmtpState.Rcpt, SmtpReplies.NeedRcpt);
        Allow(SmtpVerb.Bdat, SmtpState.Rcpt | SmtpState.Chunking, SmtpReplies.NeedRcpt);
        Allow(SmtpVerb.Rset, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Noop, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Quit, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Vrfy, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Expn, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Help, SmtpState.Any, SmtpReplies.BadSequence);
        Allow(SmtpVerb.StartTls, SmtpState.Greeted, SmtpReplies.BadSequence);
        Allow(SmtpVerb.Auth, SmtpState.Greeted, SmtpReplies.BadSequence);
        return rules;
    }
}
