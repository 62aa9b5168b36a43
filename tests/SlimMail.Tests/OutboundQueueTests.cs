using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using SlimMail.Delivery;
using SlimMail.Relay.Queue;
using SlimMail.Smtp;

namespace SlimMail.Tests;

public sealed class OutboundQueueTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-queue-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static MailTransactionContext Context(string queueId) => new(queueId,
        new SmtpSessionInfo(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 587), ListenerRole.Submission),
        AddressParser.TryParseMailbox("a@example.test"u8, out MailAddress? sender) ? sender : null, false, false, 0);

    private static DeliveryRecipient[] Recipients(params string[] addresses) =>
        addresses.Select(a => new DeliveryRecipient("", AddressParser.TryParseMailbox(Encoding.UTF8.GetBytes(a), out MailAddress? m) ? m! : throw new FormatException())).ToArray();

    private static async Task<DeliveryOutcome> QueueAsync(OutboundQueue queue, string queueId, params string[] pieces)
    {
        await using IDeliveryWriter writer = await queue.BeginAsync(Context(queueId), Recipients("x@remote.test", "y@remote.test"), default);
        foreach (string piece in pieces)
        {
            await writer.WriteAsync(Encoding.ASCII.GetBytes(piece), default);
        }

        return await writer.CommitAsync(default);
    }

    [Fact]
    public async Task A_queued_message_is_one_private_file_holding_its_envelope_and_nothing_is_left_in_tmp()
    {
        var queue = new OutboundQueue(_directory, NullLogger.Instance);
        string body = "Received: by test\r\n" + new string('x', 100_000) + "\r\n";
        Assert.Equal(DeliveryOutcome.Delivered, await QueueAsync(queue, "0000000A00001", body[..70_000], body[70_000..]));

        QueueEnvelope envelope = Assert.Single(queue.LoadAll());
        Assert.Equal("0000000A00001", envelope.Id);
        Assert.Equal("a@example.test", envelope.Sender);
        Assert.Equal(["x@remote.test", "y@remote.test"], envelope.Recipients.Select(r => r.Address));
        Assert.Equal(body.Length, envelope.Size);
        Assert.Equal(body, Encoding.ASCII.GetString(queue.ReadBody(envelope)));
        Assert.Equal("0000000A00001.msg", Path.GetFileName(Assert.Single(Directory.GetFiles(_directory)))); // one file per message
        Assert.Empty(Directory.GetFiles(Path.Combine(_directory, "tmp")));
        if (!OperatingSystem.IsWindows())
        {
            foreach (string file in Directory.GetFiles(_directory))
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
            }
        }
    }

    [Fact]
    public async Task A_queue_directory_removed_while_the_server_runs_is_created_again_for_the_next_message()
    {
        var queue = new OutboundQueue(_directory, NullLogger.Instance);
        Directory.Delete(_directory, recursive: true);
        // This message fails temporarily (451: the client retries) ...
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => QueueAsync(queue, "0000000B00001", "Subject: x\r\n\r\nx\r\n"));

        // ... and the next finds tmp/ and control/ created again.
        Assert.Equal(DeliveryOutcome.Delivered, await QueueAsync(queue, "0000000B00002", "Subject: x\r\n\r\nx\r\n"));
        Assert.Equal("0000000B00002", Assert.Single(queue.LoadAll()).Id);
        Assert.True(Directory.Exists(queue.ControlDirectory));
    }

    [Fact]
    public async Task A_queue_id_already_taken_by_an_earlier_run_is_a_temporary_failure_and_leaves_the_old_message_alone()
    {
        var queue = new OutboundQueue(_directory, NullLogger.Instance);
        Assert.Equal(DeliveryOutcome.Delivered, await QueueAsync(queue, "0000000B00001", "first\r\n"));
        await Assert.ThrowsAsync<IOException>(() => QueueAsync(queue, "0000000B00001", "second\r\n"));

        QueueEnvelope only = Assert.Single(queue.LoadAll());
        Assert.Equal("first\r\n", Encoding.ASCII.GetString(queue.ReadBody(only)));
        Assert.Single(Directory.GetFiles(_directory));
    }

    [Fact]
    public async Task A_message_given_up_before_commit_leaves_nothing_behind()
    {
        var queue = new OutboundQueue(_directory, NullLogger.Instance);
        await using (IDeliveryWriter writer = await queue.BeginAsync(Context("0000000C00001"), Recipients("x@remote.test"), default))
        {
            await writer.WriteAsync(new byte[200_000], default); // past the buffer: on disk already
        }

        Assert.Empty(queue.LoadAll());
        Assert.Empty(Directory.GetFiles(_directory, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_saved_envelope_replaces_the_old_one()
    {
        var queue = new OutboundQueue(_directory, NullLogger.Instance);
        await QueueAsync(queue, "0000000D00001", "body\r\n");
        QueueEnvelope envelope = Assert.Single(queue.LoadAll());
        envelope.Recipients.RemoveAt(0);
        Assert.True(queue.Save(envelope));

        Assert.Equal(["y@remote.test"], Assert.Single(queue.LoadAll()).Recipients.Select(r => r.Address));
        Assert.Equal(["y@remote.test"], queue.Find("0000000D00001")!.Recipients.Select(r => r.Address));
        Assert.Equal("body\r\n", Encoding.ASCII.GetString(queue.ReadBody(envelope)));
        Assert.Empty(Directory.GetFiles(Path.Combine(_directory, "tmp")));

        Assert.True(queue.Remove("0000000D00001"));
        Assert.Empty(Directory.GetFiles(_directory));
        Assert.False(queue.Remove("0000000D00001"));
    }

    [Fact]
    public async Task At_start_leftovers_go_and_a_damaged_message_stays()
    {
        var queue = new OutboundQueue(_directory, NullLogger.Instance);
        await QueueAsync(queue, "0000000F00001", "kept\r\n");
        await QueueAsync(queue, "0000000F00002", "damaged\r\n");
        string damaged = Path.Combine(_directory, "0000000F00002.msg");
        byte[] bytes = File.ReadAllBytes(damaged);
        bytes["damaged\r\n".Length] = (byte)'X'; // the envelope's JSON after the message no longer parses
        File.WriteAllBytes(damaged, bytes);
        File.WriteAllText(Path.Combine(_directory, "0000000F00003.env"), "{}"); // a removal cut short: the message was gone first
        File.WriteAllText(Path.Combine(_directory, "0000000F00004.msg"), "an older version's body, never acknowledged\r\n");

        Assert.Equal(["0000000F00001"], queue.LoadAll().Select(e => e.Id));
        Assert.Equal(["0000000F00001.msg", "0000000F00002.msg"], Directory.GetFiles(_directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_queue_written_by_an_older_version_is_read_as_it_is()
    {
        // Then every message had an envelope file, and its body was exactly the message.
        File.WriteAllText(Path.Combine(_directory, "0000001000001.msg"), "old body\r\n");
        File.WriteAllText(Path.Combine(_directory, "0000001000001.env"), """
            { "id": "0000001000001", "sender": "a@example.test", "arrival": "2026-11-30T10:00:00+00:00", "size": 10,
              "recipients": [ { "address": "x@remote.test", "state": "Pending", "nextAttempt": "2026-11-30T10:00:00+00:00" } ] }
            """);
        var queue = new OutboundQueue(_directory, NullLogger.Instance);

        QueueEnvelope envelope = Assert.Single(queue.LoadAll());
        Assert.Equal("x@remote.test", Assert.Single(envelope.Recipients).Address);
        Assert.Equal("old body\r\n", Encoding.ASCII.GetString(queue.ReadBody(envelope)));
    }
}
