using System.Security.Cryptography;

namespace SlimMail.Host.Hosting;

/// <summary>
/// The zero-configuration user <c>local</c>'s password: generated at first start into
/// <c>&lt;DataDirectory&gt;/local-password</c> (mode 0600) and never logged.
/// </summary>
internal static class LocalPassword
{
    public const string FileName = "local-password";

    /// <summary>Creates the password file if it does not exist; returns its path.</summary>
    public static string Ensure(string dataDirectory)
    {
        string path = Path.Combine(Path.GetFullPath(dataDirectory), FileName);
        if (File.Exists(path))
        {
            return path;
        }

        string password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var stream = new FileStream(path, options);
            using var writer = new StreamWriter(stream);
            writer.Write(password + "\n");
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first; theirs stands.
        }

        return path;
    }

    /// <summary>Reads the password back (for POP3 logins of user <c>local</c>).</summary>
    public static string Read(string path) => File.ReadAllText(path).Trim();
}
