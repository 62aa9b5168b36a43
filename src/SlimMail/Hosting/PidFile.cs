using System.Globalization;

namespace SlimMail.Host.Hosting;

/// <summary>The <c>PidFile</c>: written at start, removed at a clean exit.</summary>
internal sealed class PidFile : IDisposable
{
    private readonly string? _path;

    public PidFile(string? path)
    {
        _path = path is null ? null : Path.GetFullPath(path);
        if (_path is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
            File.WriteAllText(_path, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        }
    }

    public void Dispose()
    {
        if (_path is not null)
        {
            try
            {
                File.Delete(_path);
            }
            catch (IOException)
            {
            }
        }
    }
}
