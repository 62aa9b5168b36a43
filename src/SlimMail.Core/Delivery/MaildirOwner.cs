namespace SlimMail.Delivery;

/// <summary>Resolves a configured owner (<c>"user"</c> or <c>"user:group"</c>) to numeric ids.</summary>
public static class MaildirOwner
{
    /// <summary>The uid and gid, or null when the user or group is unknown (or the platform has none).</summary>
    public static (int Uid, int Gid)? Resolve(string owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return Posix.ResolveOwner(owner);
    }
}
