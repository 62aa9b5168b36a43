using System.Text;
using SlimMail.Delivery;
using SlimMail.Smtp;

namespace SlimMail.Tests.Core;

public sealed class MaildirStoreTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("slimmail-maildir-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static MailTransactionContext Context() => new("Q1",
        new SmtpSessionInfo(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 1), new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 25), ListenerRole.Local),
        null, false, false, 0);

    // tmp/ and SlimMail's staging directories in it.
    private static string[] FilesUnder(string directory) => Directory.GetFiles(directory, "*", SearchOption.AllDirectories);

    private static DeliveryRecipient[] Recipients(IReadOnlyList<string> users) =>
        users.Select(u => new DeliveryRecipient(u, AddressParser.TryParseMailbox(Encoding.UTF8.GetBytes(u + "@example.test"), out MailAddress? a) ? a! : throw new FormatException())).ToArray();

    private static async Task<DeliveryOutcome> DeliverAsync(MaildirStore store, IReadOnlyList<string> users, params string[] pieces)
    {
        await using IDeliveryWriter writer = await store.BeginAsync(Context(), Recipients(users), default);
        foreach (string piece in pieces)
        {
            await writer.WriteAsync(Encoding.UTF8.GetBytes(piece), default);
        }

        return await writer.CommitAsync(default);
    }

    [Fact]
    public async Task A_message_lands_in_new_with_lf_line_endings_and_mode_0600()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "alice"));
        var store = new MaildirStore(_ => mailbox);
        Assert.Equal(DeliveryOutcome.Delivered, await DeliverAsync(store, ["alice"], "Subject: a\r\n\r\nbo", "dy\r", "\nend\r\n"));

        string file = Assert.Single(Directory.GetFiles(mailbox.New));
        Assert.Equal("Subject: a\n\nbody\nend\n", File.ReadAllText(file));
        Assert.Empty(FilesUnder(mailbox.Tmp));
        Assert.Matches(@"^\d+\.M\d+P\d+Q\d+\.[^/]+,S=21,W=25$", Path.GetFileName(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }
    }

    [Fact]
    public async Task A_configured_file_mode_is_applied_exactly()
    {
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        var mailbox = new MaildirMailbox(Path.Combine(_root, "bob"), mode);
        var store = new MaildirStore(_ => mailbox);
        await DeliverAsync(store, ["bob"], "x\r\n");
        Assert.Equal(mode, File.GetUnixFileMode(Assert.Single(Directory.GetFiles(mailbox.New))));
    }

    [Fact]
    public async Task One_message_for_several_users_is_stored_once_per_user_by_hard_link()
    {
        var boxes = new Dictionary<string, MaildirMailbox>
        {
            ["a"] = new(Path.Combine(_root, "a")),
            ["b"] = new(Path.Combine(_root, "b")),
            ["c"] = new(Path.Combine(_root, "c"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead),
        };
        var store = new MaildirStore(user => boxes[user]);
        await DeliverAsync(store, ["a", "b", "c"], "hello\r\n");
        foreach (MaildirMailbox box in boxes.Values)
        {
            Assert.Equal("hello\n", File.ReadAllText(Assert.Single(Directory.GetFiles(box.New))));
            Assert.Empty(FilesUnder(box.Tmp));
        }

        // a and b share an inode (same mode); c has its own mode and so its own copy.
        Assert.Equal(boxes["c"].FileMode, File.GetUnixFileMode(Directory.GetFiles(boxes["c"].New)[0]));
    }

    [Fact]
    public async Task Files_get_the_configured_owner_when_running_as_root()
    {
        if (Environment.UserName != "root")
        {
            return; // Only root may give files away; CI runs as root.
        }

        (int Uid, int Gid)? owner = MaildirOwner.Resolve("nobody");
        Assert.NotNull(owner);
        var mailbox = new MaildirMailbox(Path.Combine(_root, "owned"), owner: owner);
        var store = new MaildirStore(_ => mailbox);
        await DeliverAsync(store, ["owned"], "x\r\n");
        string file = Assert.Single(Directory.GetFiles(mailbox.New));
        var stat = await SlimMail.Tests.Core.Harness.Stat.OwnerAsync(file);
        Assert.Equal(owner.Value.Uid, stat.Uid);
        Assert.Equal(owner.Value.Uid, (await SlimMail.Tests.Core.Harness.Stat.OwnerAsync(mailbox.New)).Uid);
    }

    [Fact]
    public async Task An_aborted_message_leaves_nothing_behind()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "d"));
        var store = new MaildirStore(_ => mailbox);
        await using (IDeliveryWriter writer = await store.BeginAsync(Context(), Recipients(["d"]), default))
        {
            await writer.WriteAsync(new byte[200_000], default);
        }

        Assert.Empty(Directory.GetFiles(mailbox.New));
        Assert.Empty(FilesUnder(mailbox.Tmp));
    }

    [Fact]
    public async Task Large_messages_are_written_whole()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "e"));
        var store = new MaildirStore(_ => mailbox);
        string line = new string('z', 998) + "\r\n";
        string[] pieces = Enumerable.Repeat(line, 500).ToArray();
        await DeliverAsync(store, ["e"], pieces);
        Assert.Equal(500 * 999, new FileInfo(Assert.Single(Directory.GetFiles(mailbox.New))).Length);
    }

    [Fact]
    public async Task Directory_sync_groups_concurrent_callers()
    {
        int calls = 0;
        var gate = new ManualResetEventSlim();
        var sync = new DirectorySync(_ =>
        {
            Interlocked.Increment(ref calls);
            gate.Wait(TimeSpan.FromSeconds(5));
        });
        Task Caller() => Task.Factory.StartNew(() => sync.Sync("/x"), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        // One fsync starts; twenty callers arrive while it runs; all twenty are served by one more fsync.
        Task first = Caller();
        while (Volatile.Read(ref calls) == 0)
        {
            await Task.Delay(10);
        }

        Task[] waiting = Enumerable.Range(0, 20).Select(_ => Caller()).ToArray();
        await Task.Delay(300);
        gate.Set();
        await first;
        await Task.WhenAll(waiting);
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task A_commit_that_fails_after_announcing_itself_does_not_hold_back_the_next_message()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "w"));
        int fsyncs = 0;
        var store = new MaildirStore(_ => mailbox, new DirectorySync(_ => Interlocked.Increment(ref fsyncs)));
        await using (IDeliveryWriter failing = await store.BeginAsync(Context(), Recipients(["w"]), default))
        {
            await failing.WriteAsync("Subject: lost\r\n\r\nx\r\n"u8.ToArray(), default);
            Directory.Delete(mailbox.New); // the rename into new/ fails
            await Assert.ThrowsAnyAsync<IOException>(() => failing.CommitAsync(default).AsTask());
        }

        Directory.CreateDirectory(mailbox.New);
        Assert.Equal(DeliveryOutcome.Delivered,
            await DeliverAsync(store, ["w"], "Subject: kept\r\n\r\nx\r\n").WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Single(Directory.GetFiles(mailbox.New));
        Assert.Equal(1, fsyncs);
    }

    [Theory]
    [InlineData(10)] // small: the file is created at the commit
    [InlineData(200_000)] // large: the file is created while the data streams in
    public async Task A_maildir_removed_while_the_server_runs_is_created_again_for_the_next_message(int size)
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "gone"));
        var store = new MaildirStore(_ => mailbox);
        string body = "Subject: x\r\n\r\n" + new string('y', size) + "\r\n";
        await DeliverAsync(store, ["gone"], body);

        Directory.Delete(mailbox.Root, recursive: true);
        // This message fails temporarily (451: the client retries) ...
        await Assert.ThrowsAsync<DirectoryNotFoundException>(() => DeliverAsync(store, ["gone"], body));

        // ... and the next finds cur/ new/ tmp/ and its staging directory created again.
        Assert.Equal(DeliveryOutcome.Delivered, await DeliverAsync(store, ["gone"], body));
        Assert.Single(Directory.GetFiles(mailbox.New));
        Assert.True(Directory.Exists(mailbox.Cur));
        Assert.Empty(FilesUnder(mailbox.Tmp));
    }

    [Fact]
    public async Task A_maildrop_removed_while_the_server_runs_opens_empty_and_is_created_again()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "dropped"));
        var store = new MaildirMailboxStore(_ => mailbox);
        await (await store.OpenAsync("dropped", default))!.DisposeAsync();

        Directory.Delete(mailbox.Root, recursive: true);
        IMailboxSession? session = await store.OpenAsync("dropped", default);
        Assert.NotNull(session); // not refused as if another process held it
        await using (session)
        {
            Assert.Empty(session.Messages);
            Assert.True(Directory.Exists(mailbox.New) && Directory.Exists(mailbox.Cur) && Directory.Exists(mailbox.Tmp));
        }
    }

    [Fact]
    public async Task Pop3_lists_messages_in_arrival_order_even_when_the_microseconds_gain_a_digit()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "order"));
        mailbox.EnsureCreated();
        // Written in this order within one second; a plain name sort would put M100000 before M99999.
        string[] names = ["1700000000.M99999P7Q1.host,S=1,W=2", "1700000000.M100000P7Q2.host,S=1,W=2", "1700000001.M5P7Q3.host,S=1,W=2"];
        foreach (string name in names)
        {
            File.WriteAllText(Path.Combine(mailbox.New, name), "x\n");
        }

        var store = new MaildirMailboxStore(_ => mailbox);
        await using IMailboxSession session = (await store.OpenAsync("order", default))!;
        Assert.Equal(["1700000000.M99999P7Q1.host", "1700000000.M100000P7Q2.host", "1700000001.M5P7Q3.host"], session.Messages.Select(m => m.UniqueId));
    }

    [Fact]
    public async Task An_unfinished_message_leaves_nothing_behind_in_tmp_or_new()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "abandoned"));
        var store = new MaildirStore(_ => mailbox);
        await using (IDeliveryWriter writer = await store.BeginAsync(Context(), Recipients(["abandoned"]), default))
        {
            // More than one buffer, so the file exists on disk before the writer is dropped uncommitted.
            await writer.WriteAsync(Encoding.UTF8.GetBytes(new string('x', 200_000)), default);
        }

        Assert.Empty(Directory.GetFiles(mailbox.New));
        Assert.Empty(FilesUnder(mailbox.Tmp));
    }

    [Fact]
    public void Successive_messages_take_the_staging_directories_under_tmp_in_turn()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "staged"));
        mailbox.EnsureCreated();
        string[] directories = Enumerable.Range(0, 16).Select(_ => mailbox.NextStagingDirectory()).ToArray();
        Assert.Equal(16, directories.Distinct().Count());
        Assert.All(directories, d => Assert.Equal(mailbox.Tmp, Path.GetDirectoryName(d)));
        Assert.All(directories, d => Assert.True(Directory.Exists(d)));
        if (!OperatingSystem.IsWindows())
        {
            Assert.All(directories, d => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(d)));
        }
    }

    [Fact]
    public async Task Files_left_in_tmp_for_more_than_36_hours_are_removed_at_the_first_delivery_and_younger_ones_kept()
    {
        var mailbox = new MaildirMailbox(Path.Combine(_root, "debris"));
        Directory.CreateDirectory(mailbox.Tmp);
        string stale = Path.Combine(mailbox.Tmp, "1700000000.M1P9Q1.host");
        string young = Path.Combine(mailbox.Tmp, "1700000000.M2P9Q2.host");
        string staleStaged = Path.Combine(mailbox.Tmp, ".slimmail-3", "1700000000.M3P9Q3.host");
        Directory.CreateDirectory(Path.GetDirectoryName(staleStaged)!);
        File.WriteAllText(staleStaged, "SlimMail was killed here\n");
        File.SetLastWriteTimeUtc(staleStaged, DateTime.UtcNow - TimeSpan.FromHours(40));
        File.WriteAllText(stale, "a writer died here\n");
        File.WriteAllText(young, "another program is writing this\n");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow - TimeSpan.FromHours(37));
        File.SetLastWriteTimeUtc(young, DateTime.UtcNow - TimeSpan.FromHours(35));

        var store = new MaildirStore(_ => mailbox);
        Assert.Equal(DeliveryOutcome.Delivered, await DeliverAsync(store, ["debris"], "x\r\n"));

        Assert.Equal([young], FilesUnder(mailbox.Tmp));
        Assert.Single(Directory.GetFiles(mailbox.New));
    }
}
