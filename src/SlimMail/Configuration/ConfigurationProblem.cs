namespace SlimMail.Host.Configuration;

/// <summary>One thing wrong with the configuration, named by its key in the .NET path form (<c>Smtp:Listeners:0:Role</c>).</summary>
internal sealed record ConfigurationProblem(string Key, string Message, bool IsWarning = false)
{
    public override string ToString() => (IsWarning ? "warning: " : "error: ") + Key + ": " + Message;
}
