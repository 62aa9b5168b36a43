using System.Diagnostics;
using System.Globalization;

namespace SlimMail.Tests.Core.Harness;

internal static class Stat
{
    /// <summary>The numeric owner of a path, as stat(1) reports it.</summary>
    public static async Task<(int Uid, int Gid)> OwnerAsync(string path)
    {
        var info = new ProcessStartInfo("stat", ["-c", "%u %g", path]) { RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        string[] parts = (await process.StandardOutput.ReadToEndAsync()).Trim().Split(' ');
        await process.WaitForExitAsync();
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
    }
}
