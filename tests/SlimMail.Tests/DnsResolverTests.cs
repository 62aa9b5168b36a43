using System.Net;
using System.Net.Sockets;
using SlimMail.Relay;
using SlimMail.Relay.Dns;
using SlimMail.Tests.Harness;

namespace SlimMail.Tests;

/// <summary>The resolver and MX selection against a DNS server on loopback that answers what each test needs.</summary>
public sealed class DnsResolverTests : IAsyncDisposable
{
    private readonly TestDnsServer _dns = new();

    public ValueTask DisposeAsync() => _dns.DisposeAsync();

    private MxResolver Resolver(out DnsResolver dns)
    {
        dns = new DnsResolver([new IPEndPoint(IPAddress.Loopback, _dns.Port)], TimeSpan.FromSeconds(1));
        return new MxResolver(dns, port: 2525);
    }

    [Fact]
    public async Task Mx_hosts_come_in_preference_order_with_equal_preferences_shuffled_and_their_addresses()
    {
        _dns.AddMx("example.test", 20, "backup.example.test");
        _dns.AddMx("example.test", 10, "mx1.example.test");
        _dns.AddMx("example.test", 10, "mx2.example.test");
        _dns.AddAddress("mx1.example.test", IPAddress.Parse("192.0.2.1"));
        _dns.AddAddress("mx2.example.test", IPAddress.Parse("192.0.2.2"));
        _dns.AddAddress("backup.example.test", IPAddress.Parse("192.0.2.3"));
        _dns.AddAddress("backup.example.test", IPAddress.Parse("2001:db8::3"));
        var firsts = new HashSet<string>();
        for (int i = 0; i < 40; i++)
        {
            Destination destination = await Resolver(out _).ResolveAsync("Example.Test", default);
            Assert.Null(destination.Error);
            Assert.Equal(4, destination.Hosts.Count);
            Assert.Equal(["mx1.example.test", "mx2.example.test"], destination.Hosts.Take(2).Select(h => h.Name).Order());
            Assert.Equal(["2001:db8::3", "192.0.2.3"], destination.Hosts.Skip(2).Select(h => h.Address!.ToString()));
            Assert.All(destination.Hosts, h => Assert.Equal(2525, h.Port));
            firsts.Add(destination.Hosts[0].Name);
        }

        Assert.Equal(2, firsts.Count);
    }

    [Fact]
    public async Task No_such_domain_is_permanent_and_a_server_failure_temporary()
    {
        _dns.NxDomain.Add("gone.test");
        _dns.ServFail.Add("broken.test");
        MxResolver resolver = Resolver(out _);
        Destination gone = await resolver.ResolveAsync("gone.test", default);
        Assert.True(gone.Permanent);
        Assert.Equal("5.1.2", gone.Status);
        Assert.Contains("NXDOMAIN", gone.Error, StringComparison.Ordinal);
        Destination broken = await resolver.ResolveAsync("broken.test", default);
        Assert.False(broken.Permanent);
        Assert.Empty(broken.Hosts);
    }

    [Fact]
    public async Task A_null_mx_refuses_mail_permanently()
    {
        _dns.AddMx("nullmx.test", 0, ".");
        _dns.AddAddress("nullmx.test", IPAddress.Parse("192.0.2.9"));
        Destination destination = await Resolver(out _).ResolveAsync("nullmx.test", default);
        Assert.True(destination.Permanent);
        Assert.Equal("5.1.10", destination.Status);
    }

    [Fact]
    public async Task Without_mx_records_the_domain_itself_is_the_mail_host()
    {
        _dns.AddAddress("plain.test", IPAddress.Parse("192.0.2.7"));
        Destination destination = await Resolver(out _).ResolveAsync("plain.test", default);
        Assert.Equal("192.0.2.7", Assert.Single(destination.Hosts).Address!.ToString());
    }

    [Fact]
    public async Task Cnames_are_followed_and_answers_are_cached()
    {
        _dns.AddMx("alias.test", 10, "mail.alias.test");
        _dns.AddCname("mail.alias.test", "real.host.test");
        _dns.AddAddress("real.host.test", IPAddress.Parse("192.0.2.8"));
        MxResolver resolver = Resolver(out _);
        Destination first = await resolver.ResolveAsync("alias.test", default);
        Assert.Equal("192.0.2.8", Assert.Single(first.Hosts).Address!.ToString());
        int queries = _dns.Queries.Count;
        await resolver.ResolveAsync("alias.test", default);
        Assert.Equal(queries, _dns.Queries.Count);
    }

    [Fact]
    public async Task A_truncated_udp_answer_is_asked_again_over_tcp()
    {
        _dns.AddMx("big.test", 10, "mx.big.test");
        _dns.AddAddress("mx.big.test", IPAddress.Parse("192.0.2.5"));
        _dns.TruncateOverUdp.Add("big.test");
        Destination destination = await Resolver(out _).ResolveAsync("big.test", default);
        Assert.Equal("mx.big.test", Assert.Single(destination.Hosts).Name);
        Assert.Contains(("big.test", (ushort)15, "tcp"), _dns.Queries);
    }

    [Fact]
    public async Task Address_literals_skip_dns()
    {
        MxResolver resolver = Resolver(out _);
        Assert.Equal("192.0.2.1", Assert.Single((await resolver.ResolveAsync("[192.0.2.1]", default)).Hosts).Address!.ToString());
        Assert.Equal("2001:db8::1", Assert.Single((await resolver.ResolveAsync("[IPv6:2001:db8::1]", default)).Hosts).Address!.ToString());
        Assert.True((await resolver.ResolveAsync("[not-an-ip]", default)).Permanent);
        Assert.Empty(_dns.Queries);
    }

    [Fact]
    public async Task A_server_that_never_answers_is_a_temporary_failure_after_the_timeout()
    {
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var dns = new DnsResolver([(IPEndPoint)silent.LocalEndPoint!], TimeSpan.FromMilliseconds(300), attempts: 2);
        DnsLookup lookup = await dns.LookupAsync("example.test", DnsType.Mx, default);
        Assert.True(lookup.IsTemporaryFailure);
        Assert.Contains("no answer", lookup.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Name_servers_are_read_from_resolv_conf()
    {
        string file = Path.GetTempFileName();
        File.WriteAllText(file, "# comment\nsearch example.test\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\noptions ndots:1\n");
        IReadOnlyList<IPEndPoint> servers = DnsResolver.SystemServers(file);
        File.Delete(file);
        Assert.Equal(["192.0.2.53:53", "[fe80::1]:53"], servers.Select(s => s.ToString()));
    }

    [Fact]
    public void Malformed_responses_are_refused_not_trusted()
    {
        byte[] query = DnsMessage.Query(7, "example.test", DnsType.Mx);
        Assert.Throws<FormatException>(() => DnsMessage.Parse(query)); // not a response
        byte[] loop = new byte[14];
        loop[2] = 0x80;
        loop[5] = 1;
        loop[12] = 0xC0;
        loop[13] = 12; // a pointer to itself
        Assert.Throws<FormatException>(() => DnsMessage.Parse(loop));
    }

    [Fact]
    public void The_dns_parser_never_throws_anything_but_format_errors_on_mutated_answers()
    {
        // Seeds: real answers from the test server's format (MX with compression-free names, A, AAAA, CNAME, SOA).
        byte[][] corpus =
        [
            Convert.FromHexString("1234818000010001000000000265780474657374000001000102657804746573740000010001000000" + "3c0004c0000201"),
            Convert.FromHexString("abcd818000010001000000000265780474657374000000f00010265780474657374000000f0001000000" + "3c000a000a026d78026578047465737400"),
            Convert.FromHexString("00018183000100000001000002" + "6e78047465737400000f0001" + "c00c000600010000003c0016" + "00c00c0000000100000002000000030000000400000005"),
            Convert.FromHexString("0002818000010001000000000261000001c0000100c00c0005000100000e100002c00c"),
        ];
        int seconds = int.TryParse(Environment.GetEnvironmentVariable("SLIMMAIL_FUZZ_SECONDS"), out int s) ? s : 3;
        var fuzzer = new Core.Fuzzing.MutationFuzzer(corpus, Environment.TickCount);
        int parsed = 0;
        fuzzer.Run(TimeSpan.FromSeconds(seconds), input =>
        {
            try
            {
                DnsResponse response = DnsMessage.Parse(input);
                Assert.All(response.Answers, a => Assert.True(a.Name.Length <= 255 && a.Ttl >= TimeSpan.Zero));
                parsed++;
            }
            catch (FormatException)
            {
                // Refused as malformed: the resolver treats it as no answer.
            }
        }, maxLength: 1024);
        Assert.True(parsed > 0);
    }
}
