using System.Net;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core;

public class MailRoutingTests
{
    private static readonly MailRouting Routing = new(
        new Dictionary<string, IReadOnlyDictionary<string, string>>
        {
            ["example.test"] = new Dictionary<string, string> { ["alice"] = "alice", ["postmaster"] = "alice" },
            ["catch.test"] = new Dictionary<string, string> { ["bob"] = "bob", ["*"] = "carol" },
            ["bücher.test"] = new Dictionary<string, string> { ["info"] = "bob" },
        },
        ["alice", "bob", "carol"]);

    private static MailAddress Address(string text)
    {
        Assert.True(AddressParser.TryParsePath(System.Text.Encoding.UTF8.GetBytes("<" + text + ">"), false, true, out MailAddress? address, out _));
        return address!;
    }

    [Theory]
    [InlineData("alice@example.test", MailRouteKind.LocalUser, "alice")]
    [InlineData("ALICE@Example.TEST", MailRouteKind.LocalUser, "alice")]
    [InlineData("postmaster@example.test", MailRouteKind.LocalUser, "alice")]
    [InlineData("nobody@example.test", MailRouteKind.UnknownMailbox, null)]
    [InlineData("bob@catch.test", MailRouteKind.LocalUser, "bob")]
    [InlineData("anything@catch.test", MailRouteKind.LocalUser, "carol")]
    [InlineData("info@bücher.test", MailRouteKind.LocalUser, "bob")]
    [InlineData("info@xn--bcher-kva.test", MailRouteKind.LocalUser, "bob")]
    [InlineData("alice@other.test", MailRouteKind.ForeignDomain, null)]
    [InlineData("\"alice@other.test\"@other.test", MailRouteKind.ForeignDomain, null)]
    [InlineData("alice@[192.0.2.1]", MailRouteKind.ForeignDomain, null)]
    [InlineData("postmaster", MailRouteKind.LocalUser, "alice")]
    public void Addresses_resolve_to_users(string address, MailRouteKind kind, string? user)
    {
        Assert.Equal(new MailRoute(kind, user), Routing.Resolve(Address(address)));
    }

    private static SmtpSessionInfo Session(ListenerRole role, string? user = null) =>
        new(new IPEndPoint(IPAddress.Loopback, 1), new IPEndPoint(IPAddress.Loopback, 25), role) { AuthenticatedUser = user };

    [Theory]
    [InlineData(ListenerRole.Mx, "alice@example.test", "local:alice")]
    [InlineData(ListenerRole.Mx, "nobody@example.test", "550 5.1.1")]
    [InlineData(ListenerRole.Mx, "x@other.test", "550 5.7.1")]
    [InlineData(ListenerRole.Mx, "user%other.test@example.test", "550 5.1.1")]
    [InlineData(ListenerRole.Mx, "\"user@other.test\"@example.test", "550 5.1.1")]
    [InlineData(ListenerRole.Mx, "@example.test:user@other.test", "550 5.7.1")]
    [InlineData(ListenerRole.Mx, "x@[127.0.0.1]", "550 5.7.1")]
    [InlineData(ListenerRole.Submission, "x@other.test", "550 5.7.1")]
    [InlineData(ListenerRole.Local, "x@other.test", "550 5.7.1")]
    [InlineData(ListenerRole.Local, "anything@catch.test", "local:carol")]
    public void Without_relay_foreign_domains_are_refused(ListenerRole role, string address, string expected)
    {
        var policy = new RecipientPolicy(Routing, relayEnabled: false);
        Assert.Equal(expected, Describe(policy.Decide(Session(role), Address(address))));
    }

    [Fact]
    public void A_local_listener_gives_foreign_mail_to_user_local_when_it_exists()
    {
        var routing = new MailRouting(new Dictionary<string, IReadOnlyDictionary<string, string>>(), ["local"]);
        var policy = new RecipientPolicy(routing, relayEnabled: false);
        Assert.Equal("local:local", Describe(policy.Decide(Session(ListenerRole.Local), Address("root@localhost"))));
        Assert.Equal("550 5.7.1", Describe(policy.Decide(Session(ListenerRole.Mx), Address("root@localhost"))));
    }

    [Fact]
    public void With_relay_only_trusted_sessions_relay()
    {
        var policy = new RecipientPolicy(Routing, relayEnabled: true);
        Assert.Equal("554 5.7.1", Describe(policy.Decide(Session(ListenerRole.Mx), Address("x@other.test"))));
        Assert.Equal("relay", Describe(policy.Decide(Session(ListenerRole.Mx, "alice"), Address("x@other.test"))));
        Assert.Equal("relay", Describe(policy.Decide(Session(ListenerRole.Local), Address("x@other.test"))));
    }

    private static string Describe(RecipientDecision decision) => decision.Action switch
    {
        RecipientAction.Local => "local:" + decision.User,
        RecipientAction.Relay => "relay",
        _ => decision.Reply!.Code + " " + decision.Reply.EnhancedCode,
    };
}
