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
        using (var file = new DurableFile(_directory, Path.Combine(_directory, "big.tmp"), Private))
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
        using (var file = new DurableFile(directory: null, Path.Combine(_directory, "state.tmp"), Private))
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
        using (var file = new DurableFile(directory: null, Path.Combine(_directory, "gone.tmp"), Private))
        {
            file.Append(Encoding.ASCII.GetBytes(new string('x', 100_000))); // past the buffer: created on disk
        }

        Assert.Empty(Directory.GetFiles(_directory));
    }
}
