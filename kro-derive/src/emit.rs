//! The generated kind type: `Application { metadata, spec, status }` for an
//! `ApplicationSpec`, with `kube::Resource`, serde and the RGD accessors.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::DeriveInput;

use crate::assemble::Assembled;
use crate::attrs::Item;
use crate::check::Verified;

pub(crate) fn kind_type(
    input: &DeriveInput,
    spec: &Item,
    assembled: &Assembled,
    verified: &Verified,
) -> TokenStream {
    let Ok(kind_ident) = syn::parse_str::<syn::Ident>(&assembled.kind) else {
        return quote! {};
    };
    let kind_ident = format_ident!("{}", kind_ident, span = spec.ident.span());
    let vis = &input.vis;
    let spec_ty = &spec.ident;
    let g = &spec.graph;
    let status_ty = match &g.status {
        Some(p) => quote! { #p },
        None => quote! { ::kro_sdk::NoStatus },
    };
    let kind = &assembled.kind;
    let group = g
        .group
        .as_ref()
        .map_or_else(|| "kro.run".to_owned(), syn::LitStr::value);
    let version = g
        .version
        .as_ref()
        .map_or_else(|| "v1alpha1".to_owned(), syn::LitStr::value);
    let scope = match g.scope.as_ref().map(syn::LitStr::value).as_deref() {
        Some("Cluster") => quote! { ::kro_sdk::__private::ClusterResourceScope },
        _ => quote! { ::kro_sdk::__private::NamespaceResourceScope },
    };
    let plural = &verified.plural;
    let json = &verified.json;
    let yaml = &verified.yaml;
    let files = &assembled.files;
    let doc = format!(
        "An instance of the `{kind}` kind ({group}/{version}) that the RGD built from [`{spec_ty}`] declares."
    );
    let p = quote! { ::kro_sdk::__private };
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #kind_ident {
            /// Standard object metadata.
            pub metadata: #p::ObjectMeta,
            /// The instance spec.
            pub spec: #spec_ty,
            /// The RGD's status fields, as the hub last wrote them.
            pub status: ::core::option::Option<#status_ty>,
            /// kro's own status: `state`, conditions and, when placed, the
            /// per-cluster entries and counts.
            pub kro_status: ::core::option::Option<::kro_sdk::InstanceStatus<#status_ty>>,
        }

        // Tracks the template files so editing one rebuilds this crate.
        const _: &[&str] = &[#(include_str!(#files)),*];

        impl #kind_ident {
            /// A new instance named `name` with `spec`, ready to create.
            pub fn new(name: &str, spec: #spec_ty) -> Self {
                Self {
                    metadata: #p::ObjectMeta {
                        name: ::core::option::Option::Some(name.to_owned()),
                        ..::core::default::Default::default()
                    },
                    spec,
                    status: ::core::option::Option::None,
                    kro_status: ::core::option::Option::None,
                }
            }

            /// The ResourceGraphDefinition, checked by the kro engine at compile time.
            pub fn rgd() -> ::kro_sdk::ResourceGraphDefinition {
                <Self as ::kro_sdk::ResourceGraph>::rgd()
            }

            /// The ResourceGraphDefinition as YAML.
            pub fn rgd_yaml() -> &'static str {
                #yaml
            }
        }

        impl ::kro_sdk::ResourceGraph for #kind_ident {
            type Spec = #spec_ty;
            type Status = #status_ty;

            fn rgd_json() -> &'static str {
                #json
            }

            fn rgd_yaml() -> &'static str {
                #yaml
            }

            fn new(name: &str, spec: #spec_ty) -> Self {
                #kind_ident::new(name, spec)
            }

            fn spec(&self) -> &#spec_ty {
                &self.spec
            }

            fn status(&self) -> ::core::option::Option<&#status_ty> {
                self.status.as_ref()
            }

            fn kro_status(&self) -> ::core::option::Option<&::kro_sdk::InstanceStatus<#status_ty>> {
                self.kro_status.as_ref()
            }
        }

        impl #p::kube::Resource for #kind_ident {
            type DynamicType = ();
            type Scope = #scope;

            fn kind(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#kind)
            }

            fn group(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#group)
            }

            fn version(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#version)
            }

            fn plural(_: &()) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(#plural)
            }

            fn meta(&self) -> &#p::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut #p::ObjectMeta {
                &mut self.metadata
            }
        }

        impl #p::serde::Serialize for #kind_ident {
            fn serialize<S: #p::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                #p::serialize_instance::<Self, S>(serializer, &self.metadata, &self.spec, self.status.as_ref())
            }
        }

        impl<'de> #p::serde::Deserialize<'de> for #kind_ident {
            fn deserialize<D: #p::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                let (metadata, spec, status, kro_status) =
                    #p::deserialize_instance::<Self, D>(deserializer)?;
                ::core::result::Result::Ok(Self { metadata, spec, status, kro_status })
            }
        }
    }
}
