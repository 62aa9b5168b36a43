using SlimMail.Transport;

namespace SlimMail.Pop3;

/// <summary>The POP3 commands the session knows (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).</summary>
internal enum Pop3Verb
{
    Unknown,
    Capa,
    Stls,
    User,
    Pass,
    Auth,
    Apop,
    Quit,
    Stat,
    List,
    Retr,
    Dele,
    Noop,
    Rset,
    Top,
    Uidl,
}

/// <summary>Splits a command line into its verb and argument without allocating.</summary>
internal static class Pop3CommandParser
{
    /// <summary>
    /// The verb of <paramref name="line"/> (any case) and where its argument starts: after the first space, kept as
    /// sent (a password may have spaces in it); -1 when there is none.
    /// </summary>
    public static Pop3Verb Parse(ReadOnlySpan<byte> line, out int argumentStart)
    {
        int space = line.IndexOf((byte)' ');
        ReadOnlySpan<byte> verb = space < 0 ? line : line[..space];
        argumentStart = space < 0 ? -1 : space + 1;
        return verb.Length switch
        {
            3 when (verb[0] & ~0x20) == 'T' && (verb[1] & ~0x20) == 'O' && (verb[2] & ~0x20) == 'P' => Pop3Verb.Top,
            4 => Verb4(verb),
            _ => Pop3Verb.Unknown,
        };
    }

    private static Pop3Verb Verb4(ReadOnlySpan<byte> verb)
    {
        return AsciiVerb.Fold4(verb) switch
        {
            0x43415041 => Pop3Verb.Capa, // CAPA
            0x53544C53 => Pop3Verb.Stls, // STLS
            0x55534552 => Pop3Verb.User, // USER
            0x50415353 => Pop3Verb.Pass, // PASS
            0x41555448 => Pop3Verb.Auth, // AUTH
            0x41504F50 => Pop3Verb.Apop, // APOP
            0x51554954 => Pop3Verb.Quit, // QUIT
            0x53544154 => Pop3Verb.Stat, // STAT
            0x4C495354 => Pop3Verb.List, // LIST
            0x52455452 => Pop3Verb.Retr, // RETR
            0x44454C45 => Pop3Verb.Dele, // DELE
            0x4E4F4F50 => Pop3Verb.Noop, // NOOP
            0x52534554 => Pop3Verb.Rset, // RSET
            0x5549444C => Pop3Verb.Uidl, // UIDL
            _ => Pop3Verb.Unknown,
        };
    }
}
