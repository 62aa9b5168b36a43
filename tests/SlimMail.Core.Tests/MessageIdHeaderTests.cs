using System.Text;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core;

public class MessageIdHeaderTests
{
    [Theory]
    [InlineData("Subject: a\r\nMessage-ID: <a@b.test>\r\n\r\nbody", "<a@b.test>")]
    [InlineData("message-id:   <x@y>  \r\n\r\n", "<x@y>")]
    [InlineData("Subject: a\r\n\r\nMessage-ID: <in-body@x>\r\n", null)]
    [InlineData("Subject: a\r\nMessage-ID: <a\u0001b@x>\r\n\r\n", "<a?b@x>")]
    [InlineData("Subject: no id\r\n", null)]
    public void The_message_id_is_found_only_in_the_header_section_and_made_printable(string head, string? expected) =>
        Assert.Equal(expected, MessageIdHeader.Find(Encoding.UTF8.GetBytes(head)));
}
