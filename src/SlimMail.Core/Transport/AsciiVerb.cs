namespace SlimMail.Transport;

/// <summary>Four-letter command verbs (SMTP's, POP3's) as numbers, for parsers that switch on them.</summary>
internal static class AsciiVerb
{
    /// <summary>
    /// The four bytes of <paramref name="verb"/> folded to upper case and read as one big-endian integer:
    /// <c>"retr"</c> and <c>"RETR"</c> both give 0x52455452. Only letters fold to letters, so a match is exact.
    /// </summary>
    public static uint Fold4(ReadOnlySpan<byte> verb) =>
        (uint)((verb[0] & ~0x20) << 24 | (verb[1] & ~0x20) << 16 | (verb[2] & ~0x20) << 8 | (verb[3] & ~0x20));
}
