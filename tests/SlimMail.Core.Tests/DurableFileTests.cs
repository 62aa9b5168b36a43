using System.Text;
using SlimMail.Delivery;

namespace SlimMail.Tests.Core;

public sealed class DurableFileTests : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-durable-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_file_larger_than_its_buffer_is_named_whole_and_nothing_else_is_left()
    {
        byte[] content = new byte[200_000];
        Random.Shared.NextBytes(content);
        string path = Path.Combine(_directory, "big");
        using (var file = new DurableFile(Path.Combine(_directory, "big.tmp"), Private))
        {
            file.Append(content.AsSpan(0, 70_000));
            file.Append(content.AsSpan(70_000));
            Assert.Equal(content.Length, file.Length);
            file.FlushToDisk();
            Assert.True(file.TryPublish(path));
            Assert.Throws<InvalidOperationException>(() => file.Handle); // closed: no new file behind the caller's back
        }

        Assert.Equal(content, File.ReadAllBytes(path));
        Assert.Equal(["big"], Directory.GetFiles(_directory).Select(Path.GetFileName));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(Private, File.GetUnixFileMode(path));
        }
    }

    [Fact]
    public void A_temporary_file_replaces_an_existing_one_only_when_asked()
    {
        string path = Path.Combine(_directory, "state");
        File.WriteAllText(path, "old");
        using (var file = new DurableFile(Path.Combine(_directory, "state.tmp"), Private))
        {
            file.Append("new"u8);
            file.FlushToDisk();
            Assert.False(file.TryPublish(path));
            Assert.Equal("old", File.ReadAllText(path));
            Assert.True(file.TryPublish(path, replace: true));
        }

        Assert.Equal("new", File.ReadAllText(path));
        Assert.Equal(["state"], Directory.GetFiles(_directory).Select(Path.GetFileName));
    }

    [Fact]
    public void A_file_never_published_leaves_nothing_behind()
    {
        using (var file = new DurableFile(Path.Combine(_directory, "gone.tmp"), Private))
        {
            file.Append(Encoding.ASCII.GetBytes(new string('x', 100_000))); // past the buffer: created on disk
        }

        Assert.Empty(Directory.GetFiles(_directory));
    }

    [Fact]
    public void A_file_is_on_disk_under_its_temporary_name_before_it_is_published()
    {
        // Named from its creation, so the inode the fsync writes has a link count of 1 (an unnamed file's has 0,
        // which e2fsck on a journal-less ext4 takes for a deleted file after a power loss).
        string temporary = Path.Combine(_directory, "message.tmp");
        string path = Path.Combine(_directory, "message");
        using var file = new DurableFile(temporary, Private);
        file.Append("body\n"u8);
        Assert.False(File.Exists(temporary)); // a small file costs no system call until it goes to disk
        file.FlushToDisk();
        Assert.Equal("body\n", File.ReadAllText(temporary));
        Assert.False(File.Exists(path));

        Assert.True(file.TryPublish(path));
        Assert.False(File.Exists(temporary));
        Assert.Equal("body\n", File.ReadAllText(path));
    }
}
