namespace SlimMail.Host.Commands;

/// <summary>The exit codes of the product contract.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int UserError = 1;
    public const int RuntimeFailure = 2;
}
