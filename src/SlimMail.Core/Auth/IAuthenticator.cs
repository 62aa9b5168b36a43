namespace SlimMail.Auth;

/// <summary>Checks a user name and password (SMTP AUTH, POP3 USER/PASS and AUTH PLAIN share it).</summary>
public interface IAuthenticator
{
    /// <summary>Checks the credentials. Never logs or keeps the password.</summary>
    ValueTask<AuthResult> AuthenticateAsync(string user, string password, CancellationToken cancellationToken);
}

/// <summary>The outcome of one authentication.</summary>
/// <param name="Status">Accepted, rejected, or could not be decided now.</param>
/// <param name="User">The canonical user name when accepted.</param>
public readonly record struct AuthResult(AuthStatus Status, string? User)
{
    /// <summary>Credentials accepted for <paramref name="user"/>.</summary>
    public static AuthResult Success(string user) => new(AuthStatus.Success, user);

    /// <summary>Credentials rejected.</summary>
    public static AuthResult Failure { get; } = new(AuthStatus.Failure, null);

    /// <summary>Could not decide (the checker failed or timed out): try again later.</summary>
    public static AuthResult TemporaryFailure { get; } = new(AuthStatus.TemporaryFailure, null);
}

/// <summary>The three outcomes of an authentication.</summary>
public enum AuthStatus
{
    /// <summary>Accepted.</summary>
    Success,

    /// <summary>Rejected (<c>535 5.7.8</c>, <c>-ERR [AUTH]</c>).</summary>
    Failure,

    /// <summary>Undecided (<c>454 4.7.0</c>, <c>-ERR [SYS/TEMP]</c>).</summary>
    TemporaryFailure,
}
