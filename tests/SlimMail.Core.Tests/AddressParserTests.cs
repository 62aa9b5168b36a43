using System.Text;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core;

public class AddressParserTests
{
    [Theory]
    [InlineData("<a@b.test>", "a", "b.test", false)]
    [InlineData("<\"a b\"@b.test>", "a b", "b.test", false)]
    [InlineData("<\"a\\\"b\"@b.test>", "a\"b", "b.test", false)]
    [InlineData("<\"user@other\"@b.test>", "user@other", "b.test", false)]
    [InlineData("<a@[192.0.2.1]>", "a", "[192.0.2.1]", true)]
    [InlineData("<a@[IPv6:2001:db8::1]>", "a", "[IPv6:2001:db8::1]", true)]
    [InlineData("<@r1.test,@r2.test:a@b.test>", "a", "b.test", false)]
    [InlineData("<user%other@b.test>", "user%other", "b.test", false)]
    [InlineData("<jörg@bücher.test>", "jörg", "bücher.test", false)]
    public void Valid_paths_parse(string path, string local, string domain, bool literal)
    {
        Assert.True(AddressParser.TryParsePath(Encoding.UTF8.GetBytes(path), false, false, out MailAddress? address, out int used));
        Assert.Equal(Encoding.UTF8.GetByteCount(path), used);
        Assert.Equal(local, address!.LocalPart);
        Assert.Equal(domain, address.Domain);
        Assert.Equal(literal, address.IsAddressLiteral);
    }

    [Theory]
    [InlineData("<>")]
    [InlineData("<a>")]
    [InlineData("<a@>")]
    [InlineData("<@b.test>")]
    [InlineData("<a@b@c.test>")]
    [InlineData("<a@b.test.>")]
    [InlineData("<.a@b.test>")]
    [InlineData("<a.@b.test>")]
    [InlineData("<a b@b.test>")]
    [InlineData("<a@b_c.test>")]
    [InlineData("<a@[1.2.3]>")]
    [InlineData("<a@[IPv6:zz::1]>")]
    [InlineData("<a@b.test")]
    [InlineData("a@b.test")]
    [InlineData("<@r1.test:>")]
    [InlineData("<@r1.test,:a@b.test>")]
    public void Invalid_paths_are_refused(string path)
    {
        Assert.False(AddressParser.TryParsePath(Encoding.UTF8.GetBytes(path), false, false, out _, out _));
    }

    [Fact]
    public void Null_path_only_where_allowed()
    {
        Assert.True(AddressParser.TryParsePath("<>"u8, allowNull: true, false, out MailAddress? address, out _));
        Assert.Null(address);
    }

    [Fact]
    public void Local_part_over_64_octets_is_refused()
    {
        string path = "<" + new string('a', 65) + "@b.test>";
        Assert.False(AddressParser.TryParsePath(Encoding.ASCII.GetBytes(path), false, false, out _, out _));
    }

    [Fact]
    public void Quoted_local_parts_are_written_back_quoted()
    {
        Assert.True(AddressParser.TryParsePath("<\"a b\"@x.test>"u8, false, false, out MailAddress? address, out _));
        Assert.Equal("\"a b\"@x.test", address!.ToString());
    }
}
