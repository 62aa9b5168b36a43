using SlimMail.Host.Configuration;

namespace SlimMail.Host.Commands;

/// <summary><c>slimmail check-config</c>: validates the configuration and names every problem by its key.</summary>
internal static class CheckConfigCommand
{
    public static int Run(string? configFile, IReadOnlyList<string> overrides)
    {
        (SlimMailSettings? settings, _) = ConfigurationLoader.Load(configFile, overrides, Console.Out);
        if (settings is null)
        {
            return ExitCodes.UserError;
        }

        Console.WriteLine(settings.ZeroConfig
            ? "configuration ok (no configuration file: zero-configuration defaults)"
            : $"configuration ok: {settings.ConfigFile}");
        return ExitCodes.Success;
    }
}
