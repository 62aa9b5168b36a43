using System.Text;
using SlimMail.Transport;

namespace SlimMail.Smtp;

/// <summary>The SMTP commands the engine knows.</summary>
public enum SmtpVerb
{
    /// <summary>Anything else.</summary>
    Unknown,
#pragma warning disable CS1591 // The RFC 5321 verbs name themselves.
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
#pragma warning restore CS1591
    /// <summary>An HTTP request line (<c>GET</c>, <c>POST</c>, <c>CONNECT</c>...): a cross-protocol attack.</summary>
    Http,
}

/// <summary>Splits a command line into its verb and argument without allocating.</summary>
internal static class SmtpCommandParser
{
    public static SmtpVerb Parse(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> argument)
    {
        int space = line.IndexOf((byte)' ');
        ReadOnlySpan<byte> verb = space < 0 ? line : line[..space];
        argument = space < 0 ? default : line[(space + 1)..].Trim((byte)' ');
        return verb.Length switch
        {
            3 when Ascii.EqualsIgnoreCase(verb, "GET"u8) || Ascii.EqualsIgnoreCase(verb, "PUT"u8) => SmtpVerb.Http,
            4 => Verb4(verb),
            5 when Ascii.EqualsIgnoreCase(verb, "USER:"u8) || Ascii.EqualsIgnoreCase(verb, "HOST:"u8) => SmtpVerb.Http,
            7 when Ascii.EqualsIgnoreCase(verb, "CONNECT"u8) || Ascii.EqualsIgnoreCase(verb, "OPTIONS"u8) => SmtpVerb.Http,
            8 when Ascii.EqualsIgnoreCase(verb, "STARTTLS"u8) => SmtpVerb.StartTls,
            6 when Ascii.EqualsIgnoreCase(verb, "DELETE"u8) => SmtpVerb.Http,
            _ => SmtpVerb.Unknown,
        };
    }

    private static SmtpVerb Verb4(ReadOnlySpan<byte> verb)
    {
        return AsciiVerb.Fold4(verb) switch
        {
            0x45484C4F => SmtpVerb.Ehlo, // EHLO
            0x48454C4F => SmtpVerb.Helo, // HELO
            0x4D41494C => SmtpVerb.Mail, // MAIL
            0x52435054 => SmtpVerb.Rcpt, // RCPT
            0x44415441 => SmtpVerb.Data, // DATA
            0x42444154 => SmtpVerb.Bdat, // BDAT
            0x52534554 => SmtpVerb.Rset, // RSET
            0x4E4F4F50 => SmtpVerb.Noop, // NOOP
            0x51554954 => SmtpVerb.Quit, // QUIT
            0x56524659 => SmtpVerb.Vrfy, // VRFY
            0x4558504E => SmtpVerb.Expn, // EXPN
            0x48454C50 => SmtpVerb.Help, // HELP
            0x41555448 => SmtpVerb.Auth, // AUTH
            0x504F5354 => SmtpVerb.Http, // POST
            0x48454144 => SmtpVerb.Http, // HEAD
            _ => SmtpVerb.Unknown,
        };
    }
}
