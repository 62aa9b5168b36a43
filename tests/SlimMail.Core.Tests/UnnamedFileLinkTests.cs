using System.Text;
using Microsoft.Win32.SafeHandles;
using SlimMail.Delivery;

namespace SlimMail.Tests.Core;

public sealed class UnnamedFileLinkTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slimmail-link-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private SafeFileHandle? WriteUnnamed(string text)
    {
        SafeFileHandle? file = Posix.TryOpenUnnamed(_directory, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        if (file is not null)
        {
            RandomAccess.Write(file, Encoding.ASCII.GetBytes(text), 0);
        }

        return file;
    }

    [Fact]
    public void An_unnamed_file_gets_its_name_with_its_content_unless_the_name_is_taken()
    {
        using SafeFileHandle? file = WriteUnnamed("hello\n");
        if (file is null)
        {
            return; // no O_TMPFILE here (not Linux, or the file system lacks it): Maildir writes a tmp/ file instead
        }

        string taken = Path.Combine(_directory, "taken");
        File.WriteAllText(taken, "old\n");
        Assert.False(Posix.LinkOpenFile(file, taken));
        Assert.Equal("old\n", File.ReadAllText(taken));

        string path = Path.Combine(_directory, "message");
        Assert.True(Posix.LinkOpenFile(file, path));
        Assert.Equal("hello\n", File.ReadAllText(path));
    }

    [Fact]
    public void A_missing_target_directory_is_an_error_and_later_links_still_work()
    {
        using SafeFileHandle? file = WriteUnnamed("x\n");
        if (file is null)
        {
            return;
        }

        // ENOENT is also the kernel's answer when it refuses an empty-path link: the error must surface, not be
        // taken for that refusal.
        var error = Assert.Throws<IOException>(() => Posix.LinkOpenFile(file, Path.Combine(_directory, "gone", "message")));
        Assert.Contains("errno 2", error.Message, StringComparison.Ordinal);

        string path = Path.Combine(_directory, "message");
        Assert.True(Posix.LinkOpenFile(file, path));
        Assert.Equal("x\n", File.ReadAllText(path));
    }
}
