namespace SlimMail.Smtp;

/// <summary>
/// A mailbox from an SMTP path (RFC 5321 §4.1.2): a local part and a domain or address literal.
/// </summary>
public sealed class MailAddress
{
    internal MailAddress(string localPart, string domain, bool isAddressLiteral, bool localPartWasQuoted)
    {
        LocalPart = localPart;
        Domain = domain;
        IsAddressLiteral = isAddressLiteral;
        LocalPartWasQuoted = localPartWasQuoted;
    }

    /// <summary>The local part with quoting removed (<c>"a b"@x</c> gives <c>a b</c>).</summary>
    public string LocalPart { get; }

    /// <summary>
    /// The domain as the client wrote it, or the address literal with its brackets
    /// (<c>[192.0.2.1]</c>, <c>[IPv6:2001:db8::1]</c>). Empty for the bare <c>&lt;postmaster&gt;</c>.
    /// </summary>
    public string Domain { get; }

    /// <summary>True when <see cref="Domain"/> is an address literal.</summary>
    public bool IsAddressLiteral { get; }

    /// <summary>True when the local part was written as a quoted string.</summary>
    public bool LocalPartWasQuoted { get; }

    /// <summary>True for the special recipient <c>&lt;postmaster&gt;</c> without a domain (RFC 5321 §4.5.1).</summary>
    public bool IsBarePostmaster => Domain.Length == 0;

    /// <summary>True when the local part or the domain contains non-ASCII characters.</summary>
    public bool IsInternational => !System.Text.Ascii.IsValid(LocalPart) || !System.Text.Ascii.IsValid(Domain);

    /// <summary>The address in its SMTP form, quoting the local part when it needs it.</summary>
    public override string ToString()
    {
        if (IsBarePostmaster)
        {
            return LocalPart;
        }

        return AddressParser.NeedsQuoting(LocalPart)
            ? "\"" + AddressParser.Quote(LocalPart) + "\"@" + Domain
            : LocalPart + "@" + Domain;
    }
}
