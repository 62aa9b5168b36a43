using System.Net;
using System.Text;
using SlimMail.Auth;
using SlimMail.Processes;
using SlimMail.Smtp;
using SlimMail.Tests.Core.Harness;

namespace SlimMail.Tests.Core;

public class AuthTests
{
    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static SmtpServerOptions Options(AuthThrottle? throttle = null, bool requireTls = true) => new()
    {
        Hostname = "mx.test",
        Authenticator = new FakeAuthenticator(),
        AuthThrottle = throttle ?? new AuthThrottle(delayStep: TimeSpan.Zero),
        RequireTlsForAuth = requireTls,
    };

    private static Task<SmtpTestClient> ConnectAsync(SmtpServerOptions options, IPAddress? remote = null, ListenerRole role = ListenerRole.Mx) =>
        SmtpTestClient.ConnectAsync(new MemoryMessageHandler(), options, role, remote ?? IPAddress.Loopback);

    [Fact]
    public async Task Auth_is_not_offered_in_plaintext_off_loopback_and_is_refused_with_538()
    {
        await using SmtpTestClient client = await ConnectAsync(Options(), IPAddress.Parse("192.0.2.10"));
        Assert.DoesNotContain("AUTH", await client.CommandAsync("EHLO c.test"));
        Assert.StartsWith("538 5.7.11", await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0secret")));
    }

    [Fact]
    public async Task Auth_is_offered_to_loopback_clients_in_plaintext()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        Assert.Contains("250-AUTH PLAIN LOGIN", await client.CommandAsync("EHLO c.test"));
    }

    [Fact]
    public async Task Auth_is_offered_everywhere_when_tls_is_not_required()
    {
        await using SmtpTestClient client = await ConnectAsync(Options(requireTls: false), IPAddress.Parse("192.0.2.10"));
        Assert.Contains("AUTH PLAIN LOGIN", await client.CommandAsync("EHLO c.test"));
    }

    [Fact]
    public async Task Auth_is_never_offered_on_a_local_listener()
    {
        await using SmtpTestClient client = await ConnectAsync(Options(), role: ListenerRole.Local);
        Assert.DoesNotContain("AUTH", await client.CommandAsync("EHLO c.test"));
        Assert.StartsWith("502 5.5.1", await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0secret")));
    }

    [Fact]
    public async Task Auth_plain_with_an_initial_response_succeeds_with_235()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        Assert.Equal("235 2.7.0 Authentication successful", await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0secret")));
        Assert.Equal("alice", client.Info.AuthenticatedUser);
        Assert.StartsWith("503 5.5.1", await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0secret")));
    }

    [Fact]
    public async Task Auth_plain_with_a_challenge_succeeds()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        Assert.Equal("334 ", await client.CommandAsync("AUTH PLAIN"));
        Assert.StartsWith("235", await client.CommandAsync(B64("alice\0alice\0secret")));
    }

    [Fact]
    public async Task Auth_login_asks_for_user_and_password()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        Assert.Equal("334 VXNlcm5hbWU6", await client.CommandAsync("AUTH LOGIN"));
        Assert.Equal("334 UGFzc3dvcmQ6", await client.CommandAsync(B64("alice")));
        Assert.StartsWith("235", await client.CommandAsync(B64("secret")));
    }

    [Theory]
    [InlineData("\0alice\0wrong")]
    [InlineData("bob\0alice\0secret")]
    [InlineData("alice-without-nuls")]
    public async Task Bad_credentials_get_535_5_7_8(string response)
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        Assert.Equal("535 5.7.8 Error: authentication failed", await client.CommandAsync("AUTH PLAIN " + B64(response)));
        Assert.Null(client.Info.AuthenticatedUser);
    }

    [Fact]
    public async Task A_star_cancels_the_exchange_with_501()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        await client.CommandAsync("AUTH LOGIN");
        Assert.StartsWith("501 5.0.0", await client.CommandAsync("*"));
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public async Task Bad_base64_and_unknown_mechanisms_are_refused()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        Assert.StartsWith("501 5.5.2", await client.CommandAsync("AUTH PLAIN !!!"));
        Assert.StartsWith("504 5.5.4", await client.CommandAsync("AUTH CRAM-MD5"));
    }

    [Fact]
    public async Task A_checker_that_cannot_decide_gives_454_4_7_0()
    {
        await using SmtpTestClient client = await ConnectAsync(Options());
        await client.GreetAsync();
        Assert.StartsWith("454 4.7.0", await client.CommandAsync("AUTH PLAIN " + B64("\0temp\0x")));
    }

    [Fact]
    public async Task After_five_failures_the_address_is_refused_even_with_the_right_password()
    {
        var throttle = new AuthThrottle(delayStep: TimeSpan.Zero);
        await using SmtpTestClient client = await ConnectAsync(Options(throttle));
        await client.GreetAsync();
        for (int i = 0; i < 5; i++)
        {
            Assert.StartsWith("535", await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0nope")));
        }

        Assert.StartsWith("454 4.7.0", await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0secret")));
        // Failures do not count toward MaxErrors: the session is still open.
        Assert.Equal("250 2.0.0 Ok", await client.CommandAsync("NOOP"));
    }

    [Fact]
    public void The_throttle_slows_down_then_blocks_and_forgets_after_the_block()
    {
        var time = new ManualTime();
        var throttle = new AuthThrottle(time: time);
        IPAddress address = IPAddress.Parse("192.0.2.7");
        Assert.Equal(TimeSpan.FromMilliseconds(500), throttle.RecordFailure(address));
        Assert.Equal(TimeSpan.FromMilliseconds(1000), throttle.RecordFailure(address));
        time.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(TimeSpan.FromMilliseconds(500), throttle.RecordFailure(address));
        for (int i = 0; i < 4; i++)
        {
            throttle.RecordFailure(address);
        }

        Assert.True(throttle.IsBlocked(address));
        time.Advance(TimeSpan.FromMinutes(10.5));
        Assert.False(throttle.IsBlocked(address));
    }

    [Fact]
    public async Task Submission_needs_auth_and_then_accepts_mail()
    {
        var handler = new MemoryMessageHandler();
        await using SmtpTestClient client = await SmtpTestClient.ConnectAsync(handler, Options(), ListenerRole.Submission, IPAddress.Loopback);
        await client.GreetAsync();
        Assert.StartsWith("530 5.7.0", await client.CommandAsync("MAIL FROM:<alice@example.test>"));
        await client.CommandAsync("AUTH PLAIN " + B64("\0alice\0secret"));
        Assert.StartsWith("250", await client.CommandAsync("MAIL FROM:<alice@example.test>"));
        await client.CommandAsync("RCPT TO:<x@y.test>");
        await client.CommandAsync("DATA");
        Assert.StartsWith("250", await client.CommandAsync("hi\r\n."));
        Assert.Contains("with ESMTPA id", Assert.Single(handler.Messages).Text);
    }

    [Theory]
    [InlineData("plain", new[] { "plain" })]
    [InlineData("/usr/bin/check --user 'a b' \"c \\\"d\\\"\" e\\ f", new[] { "/usr/bin/check", "--user", "a b", "c \"d\"", "e f" })]
    [InlineData("  spaced   out ", new[] { "spaced", "out" })]
    public void Command_lines_split_like_a_shell(string command, string[] expected)
    {
        Assert.Equal(expected, CommandLine.Split(command));
    }

    private sealed class ManualTime : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UnixEpoch;

        public void Advance(TimeSpan by) => _now += by;

        public override DateTimeOffset GetUtcNow() => _now;
    }
}
