using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace SlimMail.Relay.Dns;

/// <summary>The record types the relay asks for (RFC 1035 §3.2.2, RFC 3596).</summary>
public enum DnsType : ushort
{
    /// <summary>IPv4 address.</summary>
    A = 1,

    /// <summary>Canonical name.</summary>
    Cname = 5,

    /// <summary>Start of authority (only read for negative-caching TTLs).</summary>
    Soa = 6,

    /// <summary>Mail exchange.</summary>
    Mx = 15,

    /// <summary>IPv6 address.</summary>
    Aaaa = 28,
}

/// <summary>A response code (RFC 1035 §4.1.1).</summary>
public enum DnsResponseCode
{
    /// <summary>No error (possibly no data).</summary>
    NoError = 0,

    /// <summary>The server failed: try again later.</summary>
    ServerFailure = 2,

    /// <summary>The name does not exist: permanent.</summary>
    NameError = 3,

    /// <summary>Refused or any other code: treated as a temporary failure.</summary>
    Refused = 5,
}

/// <summary>One resource record of an answer.</summary>
/// <param name="Name">The owner name, lower case, without the final dot.</param>
/// <param name="Type">The record type.</param>
/// <param name="Ttl">Its time to live.</param>
/// <param name="Address">For A and AAAA.</param>
/// <param name="Target">For CNAME and MX: the name it points to (an empty string for a null MX's ".").</param>
/// <param name="Preference">For MX.</param>
public sealed record DnsRecord(string Name, DnsType Type, TimeSpan Ttl, IPAddress? Address = null, string? Target = null, ushort Preference = 0);

/// <summary>A parsed response: its code, whether it was truncated, and the answer records.</summary>
public sealed record DnsResponse(ushort Id, DnsResponseCode Code, bool Truncated, IReadOnlyList<DnsRecord> Answers, TimeSpan NegativeTtl);

/// <summary>
/// RFC 1035 messages, the little of them a mail relay needs: a query with one question and recursion
/// desired, and a response's header, question echo and answer section (compressed names included).
/// </summary>
public static class DnsMessage
{
    private const int MaxPointers = 32;

    /// <summary>Writes a query for <paramref name="name"/>/<paramref name="type"/> with <paramref name="id"/>.</summary>
    public static byte[] Query(ushort id, string name, DnsType type)
    {
        ArgumentNullException.ThrowIfNull(name);
        var message = new List<byte>(32 + name.Length);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        header[2] = 0x01; // RD: recursion desired
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], 1); // QDCOUNT
        message.AddRange(header.ToArray());
        foreach (string label in name.TrimEnd('.').Split('.'))
        {
            byte[] bytes = Encoding.ASCII.GetBytes(label);
            if (bytes.Length is 0 or > 63)
            {
                throw new ArgumentException($"'{name}' is not a valid domain name", nameof(name));
            }

            message.Add((byte)bytes.Length);
            message.AddRange(bytes);
        }

        message.Add(0);
        message.Add((byte)((ushort)type >> 8));
        message.Add((byte)type);
        message.Add(0);
        message.Add(1); // class IN
        return [.. message];
    }

    /// <summary>Parses a response; throws <see cref="FormatException"/> on a malformed one.</summary>
    public static DnsResponse Parse(ReadOnlySpan<byte> message)
    {
        if (message.Length < 12)
        {
            throw new FormatException("DNS message shorter than its header");
        }

        ushort id = BinaryPrimitives.ReadUInt16BigEndian(message);
        byte flags = message[2];
        if ((flags & 0x80) == 0)
        {
            throw new FormatException("not a DNS response");
        }

        bool truncated = (flags & 0x02) != 0;
        int rcode = message[3] & 0x0F;
        int questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        int answers = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        int authorities = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        int offset = 12;
        for (int i = 0; i < questions; i++)
        {
            ReadName(message, ref offset);
            offset += 4;
        }

        var records = new List<DnsRecord>(answers);
        TimeSpan negativeTtl = TimeSpan.FromMinutes(5);
        for (int i = 0; i < answers + authorities; i++)
        {
            string name = ReadName(message, ref offset);
            Need(message, offset, 10);
            var type = (DnsType)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            uint ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]);
            int length = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10;
            Need(message, offset, length);
            int dataStart = offset;
            TimeSpan ttlSpan = TimeSpan.FromSeconds(Math.Min(ttl, 7 * 24 * 3600u));
            if (i >= answers)
            {
                // Authority section: an SOA's MINIMUM bounds how long a "no such name/data" may be cached (RFC 2308).
                if (type == DnsType.Soa)
                {
                    int soa = dataStart;
                    ReadName(message, ref soa);
                    ReadName(message, ref soa);
                    Need(message, soa, 20);
                    uint minimum = BinaryPrimitives.ReadUInt32BigEndian(message[(soa + 16)..]);
                    negativeTtl = TimeSpan.FromSeconds(Math.Min(Math.Min(ttl, minimum), 3600u));
                }

                offset = dataStart + length;
                continue;
            }

            switch (type)
            {
                case DnsType.A when length == 4:
                    records.Add(new DnsRecord(name, type, ttlSpan, new IPAddress(message.Slice(dataStart, 4))));
                    break;
                case DnsType.Aaaa when length == 16:
                    records.Add(new DnsRecord(name, type, ttlSpan, new IPAddress(message.Slice(dataStart, 16))));
                    break;
                case DnsType.Cname:
                {
                    int at = dataStart;
                    records.Add(new DnsRecord(name, type, ttlSpan, Target: ReadName(message, ref at)));
                    break;
                }

                case DnsType.Mx when length >= 3:
                {
                    ushort preference = BinaryPrimitives.ReadUInt16BigEndian(message[dataStart..]);
                    int at = dataStart + 2;
                    records.Add(new DnsRecord(name, type, ttlSpan, Target: ReadName(message, ref at), Preference: preference));
                    break;
                }
            }

            offset = dataStart + length;
        }

        DnsResponseCode code = rcode switch
        {
            0 => DnsResponseCode.NoError,
            2 => DnsResponseCode.ServerFailure,
            3 => DnsResponseCode.NameError,
            _ => DnsResponseCode.Refused,
        };
        return new DnsResponse(id, code, truncated, records, negativeTtl);
    }

    /// <summary>The question name of a message (to match a response to its query).</summary>
    public static string QuestionName(ReadOnlySpan<byte> message)
    {
        int offset = 12;
        return ReadName(message, ref offset);
    }

    // A name: labels, possibly ending in a pointer to an earlier name (RFC 1035 §4.1.4); loops are refused.
    private static string ReadName(ReadOnlySpan<byte> message, ref int offset)
    {
        var name = new StringBuilder();
        int position = offset;
        bool jumped = false;
        for (int pointers = 0; ;)
        {
            Need(message, position, 1);
            byte length = message[position];
            if (length == 0)
            {
                if (!jumped)
                {
                    offset = position + 1;
                }

                return name.ToString().ToLowerInvariant();
            }

            if ((length & 0xC0) == 0xC0)
            {
                Need(message, position, 2);
                if (++pointers > MaxPointers)
                {
                    throw new FormatException("DNS name compression loop");
                }

                int target = BinaryPrimitives.ReadUInt16BigEndian(message[position..]) & 0x3FFF;
                if (!jumped)
                {
                    offset = position + 2;
                }

                jumped = true;
                position = target;
                continue;
            }

            if (length > 63)
            {
                throw new FormatException("bad DNS label length");
            }

            Need(message, position + 1, length);
            if (name.Length > 0)
            {
                name.Append('.');
            }

            name.Append(Encoding.ASCII.GetString(message.Slice(position + 1, length)));
            if (name.Length > 255)
            {
                throw new FormatException("DNS name too long");
            }

            position += 1 + length;
        }
    }

    private static void Need(ReadOnlySpan<byte> message, int offset, int count)
    {
        if (offset < 0 || offset + count > message.Length)
        {
            throw new FormatException("DNS message truncated");
        }
    }
}
