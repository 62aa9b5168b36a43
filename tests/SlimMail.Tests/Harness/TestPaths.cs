namespace SlimMail.Tests.Harness;

/// <summary>Where the tests find the repository, and a loopback port nobody listens on.</summary>
internal static class TestPaths
{
    /// <summary>The checkout's root (the directory with <c>SlimMail.slnx</c>).</summary>
    public static string Repository
    {
        get
        {
            string? directory = AppContext.BaseDirectory;
            while (directory is not null && !File.Exists(Path.Combine(directory, "SlimMail.slnx")))
            {
                directory = Path.GetDirectoryName(directory);
            }

            return directory ?? throw new InvalidOperationException("the repository root was not found");
        }
    }

    /// <summary>A loopback port that was free a moment ago, for a peer that must be told its port up front.</summary>
    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
