using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace SlimMail.Relay.Dns;

/// <summary>The outcome of a lookup: the records of the asked type (after following CNAMEs), or why there are none.</summary>
/// <param name="Code">NoError (possibly with no records: "no data"), NameError (no such name), or a failure.</param>
/// <param name="Records">The records of the asked type.</param>
/// <param name="Error">What went wrong, for logs and bounces; null on success.</param>
public sealed record DnsLookup(DnsResponseCode Code, IReadOnlyList<DnsRecord> Records, string? Error = null)
{
    /// <summary>Worth asking again later: a server failure, a refusal, or no answer at all.</summary>
    public bool IsTemporaryFailure => Code is DnsResponseCode.ServerFailure or DnsResponseCode.Refused;
}

/// <summary>
/// A small stub resolver (RFC 1035): queries over UDP to each configured server in turn with a timeout and
/// retries, again over TCP when the answer is truncated; follows CNAME chains; caches answers for their TTL
/// and negative answers for the SOA's minimum. Responses must match the query's random id and question.
/// </summary>
public sealed class DnsResolver
{
    private const int MaxCnameChain = 8;

    private readonly IReadOnlyList<IPEndPoint> _servers;
    private readonly TimeSpan _timeout;
    private readonly int _attempts;
    private readonly ConcurrentDictionary<(string Name, DnsType Type), (DateTime Expires, DnsResponse Response)> _cache = new();

    /// <summary>Creates a resolver for <paramref name="servers"/> (empty: those of <c>/etc/resolv.conf</c>).</summary>
    public DnsResolver(IReadOnlyList<IPEndPoint> servers, TimeSpan? timeout = null, int attempts = 2)
    {
        ArgumentNullException.ThrowIfNull(servers);
        _servers = servers.Count > 0 ? servers : SystemServers();
        _timeout = timeout ?? TimeSpan.FromSeconds(3);
        _attempts = attempts;
    }

    /// <summary>The servers asked, in order.</summary>
    public IReadOnlyList<IPEndPoint> Servers => _servers;

    /// <summary>The name servers of <c>/etc/resolv.conf</c> (<c>nameserver</c> lines), or 127.0.0.1 when there are none.</summary>
    public static IReadOnlyList<IPEndPoint> SystemServers(string path = "/etc/resolv.conf")
    {
        var servers = new List<IPEndPoint>();
        if (File.Exists(path))
        {
            foreach (string line in File.ReadLines(path))
            {
                string[] words = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (words.Length >= 2 && words[0] == "nameserver" && IPAddress.TryParse(words[1].Split('%')[0], out IPAddress? address))
                {
                    servers.Add(new IPEndPoint(address, 53));
                }
            }
        }

        return servers.Count > 0 ? servers : [new IPEndPoint(IPAddress.Loopback, 53)];
    }

    /// <summary>Records of <paramref name="type"/> for <paramref name="name"/>, following CNAMEs.</summary>
    public async Task<DnsLookup> LookupAsync(string name, DnsType type, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        string current = name.TrimEnd('.').ToLowerInvariant();
        for (int hop = 0; hop <= MaxCnameChain; hop++)
        {
            DnsResponse response;
            try
            {
                response = await QueryAsync(current, type, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or TimeoutException or FormatException)
            {
                return new DnsLookup(DnsResponseCode.ServerFailure, [], $"DNS lookup of {current} {type} failed: {e.Message}");
            }

            if (response.Code != DnsResponseCode.NoError)
            {
                string error = response.Code == DnsResponseCode.NameError
                    ? $"{current}: no such domain (NXDOMAIN)"
                    : $"{current}: DNS server failure ({response.Code})";
                return new DnsLookup(response.Code, [], error);
            }

            var records = new List<DnsRecord>();
            string? cname = null;
            // Recursive servers usually return the CNAME chain and its target's records together.
            string owner = current;
            for (int step = 0; step <= MaxCnameChain; step++)
            {
                DnsRecord? alias = null;
                foreach (DnsRecord record in response.Answers)
                {
                    if (record.Name != owner)
                    {
                        continue;
                    }

                    if (record.Type == type)
                    {
                        records.Add(record);
                    }
                    else if (record.Type == DnsType.Cname)
                    {
                        alias = record;
                    }
                }

                if (records.Count > 0 || alias is null)
                {
                    break;
                }

                owner = alias.Target!;
                cname = owner;
            }

            if (records.Count > 0 || cname is null)
            {
                return new DnsLookup(DnsResponseCode.NoError, records);
            }

            current = cname; // the chain ended without the target's records: ask for them
        }

        return new DnsLookup(DnsResponseCode.ServerFailure, [], $"{name}: CNAME chain longer than {MaxCnameChain}");
    }

    private async Task<DnsResponse> QueryAsync(string name, DnsType type, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue((name, type), out var cached) && cached.Expires > DateTime.UtcNow)
        {
            return cached.Response;
        }

        Exception? last = null;
        for (int attempt = 0; attempt < _attempts; attempt++)
        {
            foreach (IPEndPoint server in _servers)
            {
                try
                {
                    DnsResponse response = await QueryUdpAsync(server, name, type, cancellationToken).ConfigureAwait(false);
                    if (response.Truncated)
                    {
                        response = await QueryTcpAsync(server, name, type, cancellationToken).ConfigureAwait(false);
                    }

                    if (response.Code == DnsResponseCode.ServerFailure || response.Code == DnsResponseCode.Refused)
                    {
                        // Another server may know better; remember the failure in case none does.
                        last = new IOException($"{server} answered {response.Code}");
                        if (server == _servers[^1] && attempt == _attempts - 1)
                        {
                            return response;
                        }

                        continue;
                    }

                    Cache(name, type, response);
                    return response;
                }
                catch (Exception e) when (e is SocketException or IOException or TimeoutException or FormatException)
                {
                    last = e;
                }
            }
        }

        throw last is TimeoutException ? new TimeoutException($"no answer from {string.Join(", ", _servers)}")
            : new IOException(last?.Message ?? "no DNS server answered", last);
    }

    private void Cache(string name, DnsType type, DnsResponse response)
    {
        TimeSpan ttl = response.Answers.Count > 0 ? response.Answers.Min(a => a.Ttl) : response.NegativeTtl;
        if (ttl > TimeSpan.Zero)
        {
            _cache[(name, type)] = (DateTime.UtcNow + ttl, response);
        }
    }

    private async Task<DnsResponse> QueryUdpAsync(IPEndPoint server, string name, DnsType type, CancellationToken cancellationToken)
    {
        ushort id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        byte[] query = DnsMessage.Query(id, name, type);
        using var socket = new Socket(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(query, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        byte[] buffer = new byte[4096];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        while (true)
        {
            int length;
            try
            {
                length = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"no answer from {server} within {_timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
            }

            // A datagram that is not the answer to this very question (spoofed, or late) is ignored.
            if (length >= 12 && BinaryPrimitives.ReadUInt16BigEndian(buffer) == id
                && string.Equals(DnsMessage.QuestionName(buffer.AsSpan(0, length)), name, StringComparison.OrdinalIgnoreCase))
            {
                return DnsMessage.Parse(buffer.AsSpan(0, length));
            }
        }
    }

    private async Task<DnsResponse> QueryTcpAsync(IPEndPoint server, string name, DnsType type, CancellationToken cancellationToken)
    {
        ushort id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        byte[] query = DnsMessage.Query(id, name, type);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout * 2);
        using var client = new TcpClient(server.AddressFamily);
        try
        {
            await client.ConnectAsync(server, timeout.Token).ConfigureAwait(false);
            NetworkStream stream = client.GetStream();
            byte[] framed = new byte[query.Length + 2];
            BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
            query.CopyTo(framed, 2);
            await stream.WriteAsync(framed, timeout.Token).ConfigureAwait(false);
            byte[] lengthBytes = new byte[2];
            await stream.ReadExactlyAsync(lengthBytes, timeout.Token).ConfigureAwait(false);
            byte[] response = new byte[BinaryPrimitives.ReadUInt16BigEndian(lengthBytes)];
            await stream.ReadExactlyAsync(response, timeout.Token).ConfigureAwait(false);
            if (response.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(response) != id)
            {
                throw new FormatException("DNS answer over TCP does not match the query");
            }

            return DnsMessage.Parse(response);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer from {server} over TCP");
        }
        catch (EndOfStreamException e)
        {
            throw new IOException("the DNS server closed the TCP connection", e);
        }
    }
}
