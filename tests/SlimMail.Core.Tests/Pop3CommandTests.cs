using System.Net;
using System.Text;
using SlimMail.Pop3;
using SlimMail.Tests.Core.Harness;

namespace SlimMail.Tests.Core;

public sealed class Pop3CommandTests
{
    [Theory]
    [InlineData("RETR 1", "Retr", "1")]
    [InlineData("retr 1", "Retr", "1")]
    [InlineData("Dele 12", "Dele", "12")]
    [InlineData("top 1 10", "Top", "1 10")]
    [InlineData("PASS  two  spaces ", "Pass", " two  spaces ")]
    [InlineData("UIDL", "Uidl", null)]
    [InlineData("LIST ", "List", "")]
    [InlineData("capa", "Capa", null)]
    [InlineData("stls", "Stls", null)]
    [InlineData("RETRIEVE 1", "Unknown", "1")]
    [InlineData("TO 1", "Unknown", "1")]
    [InlineData("", "Unknown", null)]
    public void Verbs_are_recognised_in_any_case_and_the_argument_is_kept_as_sent(string line, string verb, string? argument)
    {
        byte[] bytes = Encoding.ASCII.GetBytes(line);
        Assert.Equal(verb, Pop3CommandParser.Parse(bytes, out int start).ToString());
        Assert.Equal(argument, start < 0 ? null : Encoding.ASCII.GetString(bytes, start, bytes.Length - start));
    }

    [Fact]
    public async Task Commands_on_one_message_answer_with_its_number_and_refuse_bad_ones()
    {
        await using var server = new Pop3Server(new Pop3ServerOptions
        {
            Listeners = [new Pop3ListenerOptions(new IPEndPoint(IPAddress.Loopback, 0))],
            Authenticator = new FakeAuthenticator(),
        }, new Pop3SessionThreadTests.ThreadRecordingStore());
        await server.StartAsync();
        await using var client = await Pop3TestClient.ConnectAsync(server.EndPoints[0]);
        await client.LoginAsync();

        Assert.Equal("+OK 1 5", await client.CommandAsync("list 1"));
        Assert.Equal("+OK 1 uid-1", await client.CommandAsync("UIDL  1 "));
        Assert.Equal("-ERR No such message", await client.CommandAsync("LIST 2"));
        Assert.Equal("-ERR Syntax: TOP msg n", await client.CommandAsync("TOP 1"));
        Assert.Equal("-ERR Syntax: TOP msg n", await client.CommandAsync("TOP 1 x"));
        Assert.Equal("-ERR Syntax: TOP msg n", await client.CommandAsync("TOP 1 2 3"));
        Assert.Equal("-ERR No such message", await client.CommandAsync("RETR 0"));
        Assert.Equal("-ERR No such message", await client.CommandAsync("RETR -1"));
        Assert.Equal("+OK Message 1 deleted", await client.CommandAsync("dele 1"));
        Assert.Equal("-ERR No such message", await client.CommandAsync("RETR 1"));
        Assert.Equal("+OK", await client.CommandAsync("LIST "));
        Assert.Equal(".", await client.ReadLineAsync());
        Assert.Equal("+OK 1 messages", await client.CommandAsync("RSET"));
        Assert.Equal("+OK 5 octets", await client.CommandAsync("RETR 1"));
        Assert.Equal("hello", await client.ReadLineAsync());
        Assert.Equal(".", await client.ReadLineAsync());
        Assert.Equal("-ERR Unknown command", await client.CommandAsync("RETRIEVE 1"));
        Assert.Equal("-ERR Already authenticated", await client.CommandAsync("user alice"));
    }
}
